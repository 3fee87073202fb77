package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; spec2im &gt; Apply... (engine: ferrolens spec2im apply). See Im2Spec for inputs and outputs.
 * Macro: {@code run("spec2im Apply...", "model=[/p/spec2im.safetensors] grid=[loops.tif] structure=[pfm.tif]")}.
 */
public class Spec2Im_Apply extends Im2Spec {
    @Override
    String commandName() { return "spec2im Apply"; }

    @Override
    boolean im2spec() { return false; }

    @Override
    boolean train() { return false; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Spec2Im_Apply(), options);
    }
}
