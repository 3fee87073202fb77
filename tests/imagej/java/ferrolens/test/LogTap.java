package ferrolens.test;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Lets a test macro read what the commands it ran wrote to the Log. In a -batch run without an ImageJ
 * window IJ.log prints to stdout (getInfo("log") stays empty), so this tees System.out into a buffer:
 * {@code call("ferrolens.test.LogTap.take")} returns the text printed since the previous take (installing
 * the tee on the first call) and empties the buffer. Used by macros/bad_sweep.ijm to judge many cases in
 * one JVM: the message of each refused case, the summary line of each legal run.
 */
public final class LogTap {
    /** ImageJ's call() may load this class again in another class loader: the one buffer lives in the system
     *  properties (a JDK object), so the tee is installed once per JVM. */
    private static final String KEY = "ferrolens.test.LogTap.buffer";

    private LogTap() {}

    private static ByteArrayOutputStream install() {
        synchronized (System.class) {
            Object b = System.getProperties().get(KEY);
            if (b instanceof ByteArrayOutputStream) return (ByteArrayOutputStream) b;
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            tee(buf);
            System.getProperties().put(KEY, buf);
            return buf;
        }
    }

    private static void tee(final ByteArrayOutputStream BUF) {
        final PrintStream orig = System.out;
        OutputStream tee = new OutputStream() {
            @Override
            public void write(int b) {
                orig.write(b);
                synchronized (BUF) { BUF.write(b); }
            }

            @Override
            public void write(byte[] b, int off, int len) {
                orig.write(b, off, len);
                synchronized (BUF) { BUF.write(b, off, len); }
            }

            @Override
            public void flush() { orig.flush(); }
        };
        System.setOut(new PrintStream(tee, true));
    }

    /** The text printed since the previous call ("" on the first: it installs the tee). */
    public static String take() {
        ByteArrayOutputStream BUF = install();
        System.out.flush();
        synchronized (BUF) {
            String s = new String(BUF.toByteArray(), StandardCharsets.UTF_8);
            BUF.reset();
            return s;
        }
    }
}
