package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Decompose &gt; NMF... Macro: {@code run("Decompose NMF", "components=3")}.
 */
public class Decompose_NMF extends Decompose {
    @Override
    String commandName() { return "Decompose NMF"; }

    @Override
    boolean nmf() { return true; }

    /** true headless: {@code call("ferrolens.Decompose_NMF.callWithOptions", "components=3")}. */
    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Decompose_NMF(), options);
    }
}
