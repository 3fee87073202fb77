package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; im2spec &gt; Train... (engine: ferrolens im2spec train). See Im2Spec for inputs and outputs.
 * Macro: {@code run("im2spec Train...", "structure=[pfm.tif] grid=[loops.tif] patch=8 latent=10 epochs=100 output=[/p/im2spec.safetensors]")}.
 */
public class Im2Spec_Train extends Im2Spec {
    @Override
    String commandName() { return "im2spec Train"; }

    @Override
    boolean im2spec() { return true; }

    @Override
    boolean train() { return true; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Im2Spec_Train(), options);
    }
}
