/* Allocation-failure sweep for Criterion tests: FL_FAULT_ALLOC=N makes the N-th engine allocation of a
 * process fail (native/src/core/alloc.c). Runs `job` in a forked child for N = 1, 2, ... until it
 * succeeds; each child must exit 0 (success) or 1 (a clean FL_ENOMEM); a crash or any other code fails
 * the test. Returns how many allocation points failed cleanly. */
#ifndef FL_FAULT_INJECTION_H
#define FL_FAULT_INJECTION_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* job returns the child's exit code: 0 success, 1 clean out-of-memory failure, other = wrong */
typedef int (*fault_job)(void *user);

static int sweep_allocation_failures(fault_job job, void *user, int max_points)
{
    int n_fail = 0;
    for (int n = 1; n < max_points; n++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", n);
            setenv("FL_FAULT_ALLOC", v, 1);
            _exit(job(user));
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        cr_assert(WIFEXITED(ws), "N=%d: child crashed", n);
        int code = WEXITSTATUS(ws);
        cr_assert(code == 0 || code == 1, "N=%d: child exit code %d", n, code);
        if (code == 0) break;
        n_fail++;
    }
    return n_fail;
}

#endif
