package ferrolens;

/**
 * Progress of a native engine call. Called on the thread that called the engine, between work units
 * (e.g. once per epoch), never from an engine worker thread.
 */
public interface ProgressListener {
    /**
     * @param stage   short lowercase word naming the work ("epoch", "encode", ...)
     * @param done    units done so far
     * @param total   units in all
     * @param loss    training loss of the unit, NaN when the stage has none
     * @param valLoss validation loss of the unit, NaN when the stage has none
     * @return true to ask the engine to stop (it stops cleanly at the next work unit)
     */
    boolean progress(String stage, long done, long total, double loss, double valLoss);
}
