package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; im2spec &gt; Apply... (engine: ferrolens im2spec apply). See Im2Spec for inputs and outputs.
 * Macro: {@code run("im2spec Apply...", "model=[/p/im2spec.safetensors] structure=[pfm.tif] grid=[loops.tif]")}.
 */
public class Im2Spec_Apply extends Im2Spec {
    @Override
    String commandName() { return "im2spec Apply"; }

    @Override
    boolean im2spec() { return true; }

    @Override
    boolean train() { return false; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Im2Spec_Apply(), options);
    }
}
