package ferrolens;

/** The user cancelled an engine call (Esc in ImageJ, or a ProgressListener returned true). */
public class CancelledException extends FerrolensException {
    private static final long serialVersionUID = 1L;

    public CancelledException(String message) {
        super(ECANCELLED, "cancelled", message);
    }
}
