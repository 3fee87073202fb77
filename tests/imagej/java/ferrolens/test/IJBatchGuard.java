package ferrolens.test;

import java.awt.AWTEvent;
import java.awt.Component;
import java.awt.Container;
import java.awt.Dialog;
import java.awt.Label;
import java.awt.TextComponent;
import java.awt.Toolkit;
import java.awt.Window;
import java.awt.event.WindowEvent;
import java.lang.reflect.Field;

/**
 * CI wrapper around ij.ImageJ.main (recipe §7): any dialog that opens during a batch run would block
 * forever on the invisible Xvfb screen, so print its title and text and halt with exit code 3.
 * Usage: java -cp ij.jar:tests.jar ferrolens.test.IJBatchGuard -batch macro.ijm args
 */
public final class IJBatchGuard {
    private IJBatchGuard() {}

    public static void main(String[] args) throws Exception {
        Toolkit.getDefaultToolkit().addAWTEventListener(e -> {
            if (e.getID() != WindowEvent.WINDOW_OPENED) return;
            Window w = ((WindowEvent) e).getWindow();
            if (!(w instanceof Dialog)) return;
            StringBuilder sb = new StringBuilder();
            collect(w, sb);
            System.out.println("IJBatchGuard: dialog opened in batch run: title='" + ((Dialog) w).getTitle()
                    + "' text=[" + sb.toString().trim() + "]");
            System.out.flush();
            Runtime.getRuntime().halt(3);
        }, AWTEvent.WINDOW_EVENT_MASK);
        ij.ImageJ.main(args);
    }

    private static void collect(Component c, StringBuilder sb) {
        if (c instanceof Label) sb.append(((Label) c).getText()).append(' ');
        else if (c instanceof TextComponent) sb.append(((TextComponent) c).getText()).append(' ');
        else if (c.getClass().getName().equals("ij.gui.MultiLineLabel")) {
            try {
                Field f = c.getClass().getDeclaredField("lines");
                f.setAccessible(true);
                Object v = f.get(c);
                if (v instanceof String[]) for (String s : (String[]) v) sb.append(s).append(' ');
            } catch (ReflectiveOperationException | RuntimeException ex) {
                sb.append("<MultiLineLabel> ");
            }
        }
        if (c instanceof Container) for (Component k : ((Container) c).getComponents()) collect(k, sb);
    }
}
