package ferrolens;

import ij.Macro;
import ij.gui.GenericDialog;

import java.awt.GraphicsEnvironment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One set of command options: a GenericDialog when the user runs the command from the menu, the macro
 * options string when run from a macro (Xvfb, GUI or true headless). Keys are the first word of each
 * label, lower-cased ("Decoder_layers" shows as "Decoder layers", key {@code decoder_layers}); checkboxes
 * are true when their key is present, as in ImageJ.
 *
 * <p>Macro options are parsed here with whole-key matching, not through GenericDialog: ImageJ 1.53t's
 * {@code Macro.getValue} matches "layers=" inside "decoder_layers=". Unknown keys are reported in the Log
 * instead of being silently ignored; a non-numeric value for a numeric field is an error, not a dialog.
 */
final class Options {
    private static final int NUM = 0, STR = 1, BOOL = 2, CHOICE = 3;

    private static final class Field {
        final int kind;
        final String label, key;
        Field(int kind, String label) {
            this.kind = kind;
            this.label = label;
            this.key = Macro.trimKey(label);
        }
    }

    private final String title;
    private final String macro;          // null: interactive dialog
    private GenericDialog gd;
    private final List<Field> fields = new ArrayList<Field>();
    private Map<String, String> parsed;
    private int next;
    private String error;
    /** Numeric values as the user gave them (macro text, or the dialog's number), by key: for messages. */
    private final Map<String, String> given = new LinkedHashMap<String, String>();

    Options(String title) {
        this.title = title;
        String m = Macro.getOptions();
        this.macro = m != null ? m : GraphicsEnvironment.isHeadless() ? "" : null;
        if (macro == null) gd = new GenericDialog(title);
    }

    /** True when the options come from a macro (no dialog is shown). */
    boolean fromMacro() { return macro != null; }

    /** True when headless and the macro gave no options at all. */
    boolean headlessWithoutOptions() { return macro != null && macro.trim().isEmpty() && GraphicsEnvironment.isHeadless(); }

    void addNumber(String label, double def, int digits) {
        fields.add(new Field(NUM, label));
        if (gd != null) gd.addNumericField(label, def, digits);
        defaults.add(def);
    }

    void addString(String label, String def, int columns) {
        fields.add(new Field(STR, label));
        if (gd != null) gd.addStringField(label, def, columns);
        defaults.add(def);
    }

    void addCheckbox(String label, boolean def) {
        fields.add(new Field(BOOL, label));
        if (gd != null) gd.addCheckbox(label, def);
        defaults.add(def);
    }

    void addChoice(String label, String[] items, String def) {
        fields.add(new Field(CHOICE, label));
        if (gd != null) gd.addChoice(label, items, def);
        defaults.add(def);
    }

    void addMessage(String text) {
        if (gd != null) gd.addMessage(text);
    }

    void addHelp(String url) {
        if (gd != null) gd.addHelp(url);
    }

    private final List<Object> defaults = new ArrayList<Object>();

    /** Shows the dialog (interactive) or parses the macro options. False when the user cancelled. */
    boolean show() {
        if (gd != null) {
            gd.showDialog();
            return !gd.wasCanceled();
        }
        parsed = parse(macro);
        List<String> unknown = new ArrayList<String>();
        for (String k : parsed.keySet()) {
            boolean known = false;
            for (Field f : fields) known |= f.key.equals(k);
            if (!known) unknown.add(k);
        }
        if (!unknown.isEmpty())
            ij.IJ.log("Ferrolens WARNING: " + title + ": unknown option(s) ignored: " + String.join(", ", unknown));
        return true;
    }

    private Field take(int kind) {
        if (next >= fields.size() || fields.get(next).kind != kind)
            throw new IllegalStateException("option fields read out of order");
        return fields.get(next++);
    }

    double nextNumber() {
        int idx = next;
        Field f = take(NUM);
        if (gd != null) {
            double v = gd.getNextNumber();
            if (gd.invalidNumber() && error == null) error = "'" + f.label.replace('_', ' ') + "' must be a number.";
            given.put(f.key, show(v));
            return v;
        }
        String s = parsed.get(f.key);
        if (s == null) {
            given.put(f.key, show((Double) defaults.get(idx)));
            return (Double) defaults.get(idx);
        }
        given.put(f.key, s.trim());
        try {
            return Double.parseDouble(s.trim());
        } catch (NumberFormatException e) {
            if (error == null) error = "Option " + f.key + "=" + s + " is not a number.";
            return Double.NaN;
        }
    }

    int nextInt() {
        double v = nextNumber();
        if (!Double.isNaN(v) && error == null) {
            String key = fields.get(next - 1).key;
            if (Math.abs(v) > Integer.MAX_VALUE)   // 1e12 is whole, but no int: say so (was "must be a whole number")
                error = "Option " + key + "=" + v + " is out of range (at most " + Integer.MAX_VALUE + " in magnitude).";
            else if (v != Math.rint(v))
                error = "Option " + key + "=" + v + " must be a whole number.";
        }
        return (int) v;
    }

    String nextString() {
        int idx = next;
        Field f = take(STR);
        if (gd != null) return gd.getNextString().trim();
        String s = parsed.get(f.key);
        return s == null ? (String) defaults.get(idx) : s.trim();
    }

    boolean nextBoolean() {
        Field f = take(BOOL);
        if (gd != null) return gd.getNextBoolean();
        String s = parsed.get(f.key);      // ImageJ: a checkbox is on when its key is present
        return s != null && !s.equalsIgnoreCase("false");
    }

    /** The chosen item; from a macro the value is validated against the items (case-insensitive). */
    String nextChoice(String[] items) {
        int idx = next;
        Field f = take(CHOICE);
        if (gd != null) return gd.getNextChoice();
        String s = parsed.get(f.key);
        if (s == null) return (String) defaults.get(idx);
        for (String it : items) if (it.equalsIgnoreCase(s.trim())) return it;
        if (error == null) error = "Option " + f.key + "=" + s + " is not one of " + String.join(", ", items) + ".";
        return null;
    }

    /** A number as a user would write it: 3, 0.001, 1e+12. */
    static String show(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return String.valueOf((long) v);
        return String.format(Locale.ROOT, "%.6g", v).replaceFirst("\\.?0+(e|$)", "$1");
    }

    /** The dialog's name of the field with this key, e.g. "Hist range (hist_range)", or null when there is none. */
    String fieldName(String key) {
        for (Field f : fields) {
            if (!f.key.equals(key)) continue;
            int p = f.label.indexOf(" (");
            return (p > 0 ? f.label.substring(0, p) : f.label).replace('_', ' ') + " (" + key + ")";
        }
        return null;
    }

    /** The value of the numeric field key as given (macro text or the dialog's number), or null when not read. */
    String given(String key) { return given.get(key); }

    /** First problem found while reading the values, or null. */
    String error() { return error; }

    /** key=value, key=[value with spaces], bare key (checkbox). Later keys override earlier ones. */
    static Map<String, String> parse(String options) {
        Map<String, String> m = new LinkedHashMap<String, String>();
        if (options == null) return m;
        int i = 0, n = options.length();
        while (i < n) {
            while (i < n && Character.isWhitespace(options.charAt(i))) i++;
            if (i >= n) break;
            int k = i;
            while (i < n && options.charAt(i) != '=' && !Character.isWhitespace(options.charAt(i))) i++;
            String key = options.substring(k, i).toLowerCase(Locale.ROOT);
            String value = "";
            if (i < n && options.charAt(i) == '=') {
                i++;
                if (i < n && options.charAt(i) == '[') {
                    int e = options.indexOf(']', i + 1);
                    if (e < 0) e = n;
                    value = options.substring(i + 1, e);
                    i = Math.min(n, e + 1);
                } else {
                    int v = i;
                    while (i < n && !Character.isWhitespace(options.charAt(i))) i++;
                    value = options.substring(v, i);
                }
            }
            if (!key.isEmpty()) m.put(key, value);
        }
        return m;
    }
}
