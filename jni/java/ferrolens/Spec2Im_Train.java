package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; spec2im &gt; Train... (engine: ferrolens spec2im train). See Im2Spec for inputs and outputs.
 * Macro: {@code run("spec2im Train...", "structure=[pfm.tif] grid=[loops.tif] patch=8 latent=10 epochs=100 output=[/p/spec2im.safetensors]")}.
 */
public class Spec2Im_Train extends Im2Spec {
    @Override
    String commandName() { return "spec2im Train"; }

    @Override
    boolean im2spec() { return false; }

    @Override
    boolean train() { return true; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Spec2Im_Train(), options);
    }
}
