package ferrolens;

/**
 * JNI probe, run under -Xcheck:jni by ctest (ij_jni_probe): every native method with bad arguments (null
 * arrays, short arrays, negative sizes, a zero/closed handle, bad paths) must throw a Java exception and
 * never crash or make the JVM print a JNI warning. Engine calls that reach the engine must map its status
 * to the documented exception classes. Prints "PROBE DONE checks=N failures=F".
 */
public final class JniProbe {
    private static int checks, failures;

    interface Call { void run() throws Exception; }

    private static void expect(String name, Class<? extends Throwable> want, Call c) {
        checks++;
        try {
            c.run();
            failures++;
            System.out.println("PROBE FAIL " + name + ": no exception, expected " + want.getSimpleName());
        } catch (Throwable t) {
            if (want.isInstance(t)) System.out.println("ok   " + name + ": " + t.getClass().getSimpleName() + ": " + t.getMessage());
            else {
                failures++;
                System.out.println("PROBE FAIL " + name + ": got " + t + ", expected " + want.getSimpleName());
            }
        }
    }

    private static void ok(String name, Call c) {
        checks++;
        try {
            c.run();
            System.out.println("ok   " + name);
        } catch (Throwable t) {
            failures++;
            System.out.println("PROBE FAIL " + name + ": " + t);
        }
    }

    public static void main(String[] args) throws Exception {
        Native.load();
        System.out.println("loaded from " + Native.loadedFrom() + ", engine " + Native.engineVersion());
        final int[] ints = new int[Native.N_INTS];
        final float[] floats = new float[Native.N_FLOATS];
        final long[] seed = new long[1];

        ok("defaults", () -> {
            SaeConfig d = SaeConfig.defaults();
            if (d.latent <= 0 || d.hidden <= 0) throw new AssertionError("bad defaults " + d);
        });
        expect("configDefault null ints", NullPointerException.class, () -> Native.saeConfigDefault(null, floats, seed));
        expect("configDefault short floats", IllegalArgumentException.class, () -> Native.saeConfigDefault(ints, new float[2], seed));
        expect("configDefault null seed", NullPointerException.class, () -> Native.saeConfigDefault(ints, floats, null));
        expect("create null ints", NullPointerException.class, () -> Native.saeCreate(null, floats, 1, 1));
        expect("create short ints", IllegalArgumentException.class, () -> Native.saeCreate(new int[3], floats, 1, 1));
        // all-zero config: the engine must refuse it with a status (EINVAL -> IllegalArgumentException, or
        // FerrolensException while the engine is a stub)
        expect("create zero config", Exception.class, () -> Native.saeCreate(new int[Native.N_INTS], new float[Native.N_FLOATS], 1, 1));

        // closed / zero handle: every model method
        final long z = 0;
        final float[] f16 = new float[16];
        expect("free(0) is a no-op", NoException.class, () -> { Native.saeFree(0); throw new NoException(); });
        expect("getConfig closed", IllegalStateException.class, () -> Native.saeGetConfig(z, ints, floats, seed));
        expect("paramCount closed", IllegalStateException.class, () -> Native.saeParamCount(z));
        expect("train closed", IllegalStateException.class, () -> Native.saeTrain(z, f16, 1, 16, 1, null));
        expect("encode closed", IllegalStateException.class, () -> Native.saeEncode(z, f16, 1, 16, f16, 1, null));
        expect("decode closed", IllegalStateException.class, () -> Native.saeDecode(z, f16, 1, f16, 1, null));
        expect("apply closed", IllegalStateException.class, () -> Native.saeApply(z, f16, 1, 16, f16, f16, 1, null));
        expect("traverse closed", IllegalStateException.class, () -> Native.saeTraverse(z, f16, 1, 0, 10, false, f16, f16, 1, null));
        expect("setAxis closed", IllegalStateException.class, () -> Native.saeSetAxis(z, new double[16], "bias", "V"));
        expect("axisValues closed", IllegalStateException.class, () -> Native.saeAxisValues(z));
        expect("axisUnit closed", IllegalStateException.class, () -> Native.saeAxisUnit(z));
        expect("axisLabel closed", IllegalStateException.class, () -> Native.saeAxisLabel(z));
        expect("save closed", IllegalStateException.class, () -> Native.saeSave(z, "/tmp/x".getBytes("UTF-8"), 1));

        // paths
        expect("load null path", NullPointerException.class, () -> Native.saeLoad(null, 1));
        expect("load empty path", IllegalArgumentException.class, () -> Native.saeLoad(new byte[0], 1));
        expect("load NUL in path", IllegalArgumentException.class, () -> Native.saeLoad(new byte[] {'/', 0, 'x'}, 1));
        expect("load missing file", FerrolensException.class, () -> Native.saeLoad("/nonexistent/dir/m.safetensors".getBytes("UTF-8"), 1));
        expect("load a directory", FerrolensException.class, () -> Native.saeLoad("/tmp".getBytes("UTF-8"), 1));
        expect("import missing file", FerrolensException.class, () -> Native.saeImportKeras("/nonexistent.h5".getBytes("UTF-8"), 96, 1));
        expect("import zero steps", IllegalArgumentException.class, () -> Native.saeImportKeras("/x.h5".getBytes("UTF-8"), 0, 1));
        expect("import decoder closed", IllegalStateException.class, () -> Native.saeImportKerasDecoder(z, "/x.h5".getBytes("UTF-8"), 1));
        expect("info missing file", FerrolensException.class, () -> Native.modelInfo("/nonexistent.st".getBytes("UTF-8"), false));
        expect("info null path", NullPointerException.class, () -> Native.modelInfo(null, true));
        expect("Java path check", IllegalArgumentException.class, () -> SaeModel.load("a\0b", 1));
        expect("Java null path", IllegalArgumentException.class, () -> SaeModel.info(null, false));

        // a real model when the engine can make one: bad sizes on a live handle, then use after close
        SaeConfig c = SaeConfig.defaults();
        c.steps = 16; c.hidden = 4; c.encLayers = 1; c.decLayers = 1; c.latent = 3; c.epochs = 1; c.batch = 8;
        SaeModel m = null;
        try {
            m = SaeModel.create(c, 1);
        } catch (FerrolensException e) {
            System.out.println("note engine cannot create a model yet (" + e.getStatusName() + ": " + e.getMessage()
                    + "): live-handle checks skipped");
        }
        if (m != null) {
            final SaeModel mm = m;
            final long h = handleOf(m);
            final float[] curves = new float[32 * 16];
            for (int i = 0; i < curves.length; i++) curves[i] = (float) Math.sin(i * 0.3);
            expect("train null curves", NullPointerException.class, () -> Native.saeTrain(h, null, 32, 16, 1, null));
            expect("train short curves", IllegalArgumentException.class, () -> Native.saeTrain(h, new float[10], 32, 16, 1, null));
            expect("train negative n", IllegalArgumentException.class, () -> Native.saeTrain(h, curves, -1, 16, 1, null));
            expect("train zero steps", IllegalArgumentException.class, () -> Native.saeTrain(h, curves, 32, 0, 1, null));
            expect("train huge n", IllegalArgumentException.class, () -> Native.saeTrain(h, curves, Long.MAX_VALUE / 2, 16, 1, null));
            expect("train wrong steps (engine)", Exception.class, () -> Native.saeTrain(h, curves, 16, 32, 1, null));
            expect("train listener throws", IllegalStateException.class, () -> Native.saeTrain(h, curves, 32, 16, 1,
                    (s, d, t, l, v) -> { throw new IllegalStateException("thrown in callback"); }));
            ok("train with cancel after 1 epoch", () -> {
                double[] r = Native.saeTrain(h, curves, 32, 16, 1, (s, d, t, l, v) -> s.equals("epoch"));
                if (r[0] != 1 || r[5] != 1) throw new AssertionError("expected 1 epoch and cancelled");
                System.out.println("     report epochs=" + r[0] + " cancelled=" + r[5]);
            });
            expect("train cancel before the first epoch", CancelledException.class, () -> Native.saeTrain(h, curves, 32, 16, 1, (s, d, t, l, v) -> true));
            expect("encode short emb", IllegalArgumentException.class, () -> Native.saeEncode(h, curves, 32, 16, new float[5], 1, null));
            expect("encode null emb", NullPointerException.class, () -> Native.saeEncode(h, curves, 32, 16, null, 1, null));
            expect("apply short recon", IllegalArgumentException.class, () -> Native.saeApply(h, curves, 32, 16, null, new float[3], 1, null));
            ok("apply both null outputs", () -> Native.saeApply(h, curves, 32, 16, null, null, 1, null));
            expect("decode short out", IllegalArgumentException.class, () -> Native.saeDecode(h, new float[32 * 3], 32, new float[4], 1, null));
            expect("decode negative n", IllegalArgumentException.class, () -> Native.saeDecode(h, new float[3], -5, new float[16], 1, null));
            expect("traverse bad channel", IllegalArgumentException.class, () -> Native.saeTraverse(h, new float[96], 32, 7, 10, false, new float[10], new float[160], 1, null));
            expect("traverse negative channel", IllegalArgumentException.class, () -> Native.saeTraverse(h, new float[96], 32, -1, 10, false, new float[10], new float[160], 1, null));
            expect("traverse 1 level", IllegalArgumentException.class, () -> Native.saeTraverse(h, new float[96], 32, 0, 1, false, new float[10], new float[160], 1, null));
            expect("traverse short values", IllegalArgumentException.class, () -> Native.saeTraverse(h, new float[96], 32, 0, 10, false, new float[2], new float[160], 1, null));
            expect("setAxis null", NullPointerException.class, () -> Native.saeSetAxis(h, null, "", ""));
            expect("setAxis wrong length (engine)", Exception.class, () -> Native.saeSetAxis(h, new double[5], "bias", "V"));
            expect("import decoder missing file", FerrolensException.class, () -> Native.saeImportKerasDecoder(h, "/nonexistent.h5".getBytes("UTF-8"), 1));
            expect("save to missing folder", FerrolensException.class, () -> Native.saeSave(h, "/nonexistent/d/m.safetensors".getBytes("UTF-8"), 1));
            m.close();
            m.close(); // twice is fine
            expect("SaeModel use after close", IllegalStateException.class, () -> mm.config());
            expect("SaeModel train after close", IllegalStateException.class, () -> mm.train(curves, 32, 16, 1, null));
        }
        System.out.println("PROBE DONE checks=" + checks + " failures=" + failures);
    }

    static final class NoException extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    private static long handleOf(SaeModel m) throws ReflectiveOperationException {
        java.lang.reflect.Field f = SaeModel.class.getDeclaredField("handle");
        f.setAccessible(true);
        return f.getLong(m);
    }
}
