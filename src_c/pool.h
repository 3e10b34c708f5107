/* nncore's own threads: a process-wide set of workers that sleep between jobs, for the compiled
 * core's data-parallel steps and inference.
 *
 * A job runs on a team: the calling thread (thread 0) and n - 1 workers taken from the idle ones
 * (started when there are too few). Two jobs from two Python threads get two teams, each with
 * its own workers, so one never waits for the other. Within a job, the team meets at
 * nncore_team_barrier, which spins for at most nncore_pool_spin_microseconds() (a budget each team
 * adapts: it shrinks while partners come late) and then sleeps on a condition variable: a partner
 * the OS has descheduled costs the others no CPU (OpenMP's and OpenBLAS's spinning waits made a
 * busy 2-core machine 5-26x slower at 2 threads than at 1).
 *
 * The thread count a caller asks for when it gives none, nncore_get_num_threads(), is one
 * process-wide setting: OMP_NUM_THREADS (its first entry) when set, else the CPUs this process may
 * run on; nncore_set_num_threads changes it (threadpoolctl does, through nncore's controller).
 *
 * Fork: a child made by fork() has none of the parent's workers; the pool forgets them in the
 * child (pthread_atfork) and starts its own on the child's first job.
 *
 * POSIX threads only: elsewhere (Windows) every job runs on the calling thread alone.
 */
#ifndef NNCORE_POOL_H
#define NNCORE_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

/* The most threads a job may have. */
#define NNCORE_POOL_MAX_THREADS 256

typedef struct nncore_team nncore_team;

/* What every thread of a team runs: thread is 0 .. nncore_team_size(team) - 1. */
typedef void (*nncore_job)(void* context, nncore_team* team, int thread);

/* Run job on a team of up to n_threads threads (the caller is thread 0); returns when every
 * thread has returned from it. Fewer threads when the system refuses to start more (the job
 * reads its team's size). Returns the team's size. */
int nncore_pool_run(int n_threads, nncore_job job, void* context);

/* Every thread of the team waits here until all have arrived. */
void nncore_team_barrier(nncore_team* team);
int nncore_team_size(const nncore_team* team);

/* The process-wide thread count (at least 1, at most NNCORE_POOL_MAX_THREADS). */
int nncore_get_num_threads(void);
void nncore_set_num_threads(int n_threads);

/* Workers started in this process (not counting those of a parent before a fork). */
int nncore_pool_workers(void);
/* Whether this build runs jobs on several threads (POSIX threads available). */
int nncore_pool_threaded(void);
/* How long a barrier spins before it sleeps, in microseconds (0: sleep at once). */
int nncore_pool_spin_microseconds(void);
void nncore_pool_set_spin_microseconds(int microseconds);

#ifdef __cplusplus
}
#endif

#endif /* NNCORE_POOL_H */
