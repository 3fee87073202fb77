package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Decompose &gt; PCA... Macro: {@code run("Decompose PCA", "components=3")}.
 */
public class Decompose_PCA extends Decompose {
    @Override
    String commandName() { return "Decompose PCA"; }

    @Override
    boolean nmf() { return false; }

    /** true headless: {@code call("ferrolens.Decompose_PCA.callWithOptions", "components=3")}. */
    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Decompose_PCA(), options);
    }
}
