/* SPDX-License-Identifier: MIT */
/*
 * test_proc.h - the tests' one process helper: run a program and capture what it
 * printed, and fork N workers and wait for them all.
 *
 * Every test that starts a process goes through here (the CLIs' tests, the plugin's
 * end-to-end tests, the concurrency tests, the torture's final CLI check), so a child
 * is started, redirected and reaped one way: no core files, output captured through
 * anonymous temporary files (a child that prints a lot cannot block on a full pipe),
 * and the status reported as the exit code, or 128 + signal as a shell does.
 */
#ifndef TEST_PROC_H
#define TEST_PROC_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The exit status of a reaped child: its exit code, or 128 + the signal that ended it. */
static inline int cmt_proc_status(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* waitpid(pid) through EINTR; 0 when reaped, its raw status in *st. */
static inline int cmt_proc_waitpid_(pid_t pid, int *st)
{
    pid_t r;
    do
        r = waitpid(pid, st, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? 0 : -1;
}

/* Waits for pid; its status as cmt_proc_status(), -1 when it cannot be reaped. */
static inline int cmt_proc_wait(pid_t pid)
{
    int st = 0;
    return cmt_proc_waitpid_(pid, &st) == 0 ? cmt_proc_status(st) : -1;
}

/* Reads what a child wrote into f (rewound) as a NUL-terminated string in buf. */
static inline void cmt_proc_slurp_(FILE *f, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    buf[0] = '\0';
    if (!f)
        return;
    rewind(f);
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
}

/*
 * Runs argv (NULL-terminated; argv[0] is the program's path, not searched in PATH) in
 * directory dir (NULL: this one) and waits for it. Its stdout goes into out
 * (NUL-terminated, truncated to out_size - 1; out may be NULL); its stderr into err, or
 * into out with stdout when err is NULL. No core file is written when the child
 * crashes. Returns the exit code, 128 + signal, or -1 when the child could not be
 * started (fork failed; exec or chdir failing gives 127).
 */
static inline int cmt_proc_run_in(const char *dir, char *const argv[], char *out, size_t out_size,
                                  char *err, size_t err_size)
{
    FILE *fo = tmpfile();
    FILE *fe = err ? tmpfile() : NULL;
    if (!fo || (err && !fe)) {
        if (fo)
            fclose(fo);
        if (fe)
            fclose(fe);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fileno(fo), 1);
        dup2(fileno(fe ? fe : fo), 2);
        if (dir && chdir(dir) != 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int rc = pid < 0 ? -1 : cmt_proc_wait(pid);
    cmt_proc_slurp_(fo, out, out_size);
    cmt_proc_slurp_(fe, err, err_size);
    fclose(fo);
    if (fe)
        fclose(fe);
    return rc;
}

/* cmt_proc_run_in() in this directory. */
static inline int cmt_proc_run(char *const argv[], char *out, size_t out_size, char *err,
                               size_t err_size)
{
    return cmt_proc_run_in(NULL, argv, out, out_size, err, err_size);
}

/* A worker: runs in child i of n; its return value (0..255) is the child's exit code. */
typedef int (*cmt_worker_fn)(int i, void *arg);

/* Forks one child that runs fn(i, arg) and exits with its result; -1 if fork failed. */
static inline pid_t cmt_proc_fork(cmt_worker_fn fn, int i, void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(i, arg) & 0xff);
    return pid;
}

/*
 * Forks n children at once, child i running fn(i, arg), then waits for every one of
 * them. code[i] (n entries, may be NULL) receives child i's exit code (0..255), or -1
 * when it did not exit (killed by a signal, or could not be forked or reaped). Returns
 * how many children did not exit: 0 when every one ran and exited.
 */
static inline int cmt_proc_workers(int n, cmt_worker_fn fn, void *arg, int *code)
{
    pid_t pids[256];
    int bad = 0;
    if (n < 0 || n > 256)
        return n;
    for (int i = 0; i < n; i++)
        pids[i] = cmt_proc_fork(fn, i, arg);
    for (int i = 0; i < n; i++) {
        int st = 0, c = -1;
        if (pids[i] >= 0 && cmt_proc_waitpid_(pids[i], &st) == 0 && WIFEXITED(st))
            c = WEXITSTATUS(st);
        bad += c < 0;
        if (code)
            code[i] = c;
    }
    return bad;
}

#endif /* TEST_PROC_H */
