package ferrolens;

import java.io.IOException;

/**
 * An engine call failed: the file could not be read or written, is not a Ferrolens model, the model
 * does not fit the data, memory ran out, or the engine does not support the request. Carries the
 * engine's status code, its name and the engine's sentence for the user.
 */
public class FerrolensException extends IOException {
    private static final long serialVersionUID = 1L;

    /** Engine status codes (fl_status in ferrolens.h). */
    public static final int OK = 0, EINVAL = 1, ENOMEM = 2, EIO = 3, EFORMAT = 4, EMISMATCH = 5,
            ECANCELLED = 6, EUNSUPPORTED = 7, EINTERNAL = 8;

    private final int status;
    private final String statusName;

    public FerrolensException(int status, String statusName, String message) {
        super(message == null || message.isEmpty() ? statusName : message);
        this.status = status;
        this.statusName = statusName == null ? "error" : statusName;
    }

    /** The engine's fl_status value. */
    public int getStatus() { return status; }

    /** The engine's name of the status, e.g. "model and data do not match". */
    public String getStatusName() { return statusName; }

    /** True when the model and the data do not fit together (FL_EMISMATCH). */
    public boolean isMismatch() { return status == EMISMATCH; }
}
