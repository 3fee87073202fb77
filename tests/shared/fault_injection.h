/* Allocation-failure sweep for Criterion tests: FL_FAULT_ALLOC=N makes the N-th engine allocation of a
 * process fail (native/src/core/alloc.c). The sweeps run `job` in a forked child for each N; each child
 * must exit 0 (success) or 1 (a clean FL_ENOMEM); a crash or any other code fails the test. */
#ifndef FL_FAULT_INJECTION_H
#define FL_FAULT_INJECTION_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* job returns the child's exit code: 0 success, 1 clean out-of-memory failure, other = wrong */
typedef int (*fault_job)(void *user);

/* FL_FAULT_ALLOC = first, first + stride, ... (each in a forked child) until job succeeds or N passes
 * last; `what` names the job in failure messages. Returns the number of clean failures; *succeeded (may
 * be NULL) tells whether a run succeeded. */
static int sweep_allocation_points(fault_job job, void *user, const char *what, int first, int last, int stride,
                                   int *succeeded)
{
    int n_fail = 0;
    if (succeeded) *succeeded = 0;
    for (int n = first; n <= last; n += stride) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", n);
            setenv("FL_FAULT_ALLOC", v, 1);
            _exit(job(user));
        }
        int ws = 0;
        cr_assert_eq(waitpid(pid, &ws, 0), pid);
        cr_assert(WIFEXITED(ws), "%s: N=%d: the test child crashed", what, n);
        int code = WEXITSTATUS(ws);
        cr_assert(code == 0 || code == 1, "%s: N=%d: child exit code %d", what, n, code);
        if (code == 0) {
            if (succeeded) *succeeded = 1;
            break;
        }
        n_fail++;
    }
    return n_fail;
}

/* Every point from the first until the job succeeds (at most max_points - 1 of them). */
static int sweep_allocation_failures(fault_job job, void *user, int max_points)
{
    return sweep_allocation_points(job, user, "job", 1, max_points - 1, 1, NULL);
}

#endif
