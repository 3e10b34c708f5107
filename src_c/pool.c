/* nncore's own threads (pool.h): idle workers on a list, a team per job, passive barriers. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#define NNCORE_POSIX_THREADS 1
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#else
#define NNCORE_POSIX_THREADS 0
#endif

/* A barrier spins at most this long before it sleeps: long enough to catch a partner a few
 * microseconds behind on an idle machine (a sleep and wake-up costs ~10-50 us: a 784-10-10 step
 * of 128 rows took 13.7 ms per epoch without spinning, 7.0 ms with 20 us), and each team adapts
 * it (nncore_team_barrier): on a busy machine, where the partner is descheduled and spinning only
 * burns the core it needs, the budget decays to nothing (benchmarks/thread_pool.py measured both). */
#define NNCORE_DEFAULT_SPIN_MICROSECONDS 20

static int configured_threads = 0;   /* 0: not read from the environment yet */
static int spin_microseconds = NNCORE_DEFAULT_SPIN_MICROSECONDS;

static int threads_from_environment(void) {
    const char* value = getenv("OMP_NUM_THREADS");
    if (value != NULL) {
        char* end;
        long n = strtol(value, &end, 10);   /* "4" or the first entry of "4,2" */
        if (end != value && (*end == '\0' || *end == ',') && n >= 1)
            return n < NNCORE_POOL_MAX_THREADS ? (int) n : NNCORE_POOL_MAX_THREADS;
    }
#if defined(__linux__) && defined(CPU_COUNT)
    {
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) >= 1)
            return CPU_COUNT(&allowed) < NNCORE_POOL_MAX_THREADS ? CPU_COUNT(&allowed) : NNCORE_POOL_MAX_THREADS;
    }
#endif
#if NNCORE_POSIX_THREADS && defined(_SC_NPROCESSORS_ONLN)
    {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        if (online >= 1)
            return online < NNCORE_POOL_MAX_THREADS ? (int) online : NNCORE_POOL_MAX_THREADS;
    }
#endif
    return 1;
}

int nncore_get_num_threads(void) {
    int n = __atomic_load_n(&configured_threads, __ATOMIC_RELAXED);
    if (n == 0) {
        n = threads_from_environment();
        __atomic_store_n(&configured_threads, n, __ATOMIC_RELAXED);
    }
    return n;
}

void nncore_set_num_threads(int n_threads) {
    int n = n_threads < 1 ? 1 : n_threads > NNCORE_POOL_MAX_THREADS ? NNCORE_POOL_MAX_THREADS : n_threads;
    __atomic_store_n(&configured_threads, n, __ATOMIC_RELAXED);
}

int nncore_pool_spin_microseconds(void) { return __atomic_load_n(&spin_microseconds, __ATOMIC_RELAXED); }

void nncore_pool_set_spin_microseconds(int microseconds) {
    __atomic_store_n(&spin_microseconds, microseconds < 0 ? 0 : microseconds, __ATOMIC_RELAXED);
}

#if NNCORE_POSIX_THREADS

struct nncore_team {
    nncore_job job;
    void* context;
    int size;
    pthread_mutex_t lock;
    pthread_cond_t changed;      /* a barrier's generation moved on, or a worker finished */
    int arrived;                 /* threads at the barrier now */
    unsigned generation;         /* barriers passed */
    int spin_ns;                 /* this team's spin budget now (adapted by the waits it sees) */
    unsigned probes;             /* waits while the budget was nothing */
    int finished;                /* workers done with the job */
};

typedef struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    nncore_team* team;           /* the job to run, set with has_job */
    int index;
    int has_job;
    struct worker* next_idle;
} worker;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static worker* idle_workers = NULL;
static int started_workers = 0;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;

static void before_fork(void) { pthread_mutex_lock(&pool_lock); }
static void after_fork_in_parent(void) { pthread_mutex_unlock(&pool_lock); }

static void after_fork_in_child(void) {
    /* The workers did not come along: forget them (their memory stays, a few hundred bytes each). */
    pthread_mutex_init(&pool_lock, NULL);
    idle_workers = NULL;
    started_workers = 0;
}

static void install_fork_handlers(void) { pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); }

static double seconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + 1e-9 * (double) now.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void* worker_main(void* argument) {
    worker* self = (worker*) argument;
    for (;;) {
        pthread_mutex_lock(&self->lock);
        while (!self->has_job)
            pthread_cond_wait(&self->wake, &self->lock);
        nncore_team* team = self->team;
        int index = self->index;
        self->has_job = 0;
        pthread_mutex_unlock(&self->lock);

        team->job(team->context, team, index);

        /* Idle again before the caller may return: its next job finds this worker. */
        pthread_mutex_lock(&pool_lock);
        self->next_idle = idle_workers;
        idle_workers = self;
        pthread_mutex_unlock(&pool_lock);
        pthread_mutex_lock(&team->lock);
        team->finished++;
        pthread_cond_broadcast(&team->changed);
        pthread_mutex_unlock(&team->lock);   /* the team may be gone after this: not touched again */
    }
    return NULL;
}

/* An idle worker, or a new one; NULL when the system will not start another thread. Called with pool_lock held. */
static worker* take_worker(void) {
    if (idle_workers != NULL) {
        worker* taken = idle_workers;
        idle_workers = taken->next_idle;
        return taken;
    }
    worker* fresh = (worker*) calloc(1, sizeof(worker));
    if (fresh == NULL)
        return NULL;
    pthread_mutex_init(&fresh->lock, NULL);
    pthread_cond_init(&fresh->wake, NULL);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&fresh->thread, &attributes, worker_main, fresh);
    pthread_attr_destroy(&attributes);
    if (failed) {
        pthread_cond_destroy(&fresh->wake);
        pthread_mutex_destroy(&fresh->lock);
        free(fresh);
        return NULL;
    }
    started_workers++;
    return fresh;
}

int nncore_pool_run(int n_threads, nncore_job job, void* context) {
    worker* team_workers[NNCORE_POOL_MAX_THREADS];
    nncore_team team;
    int wanted = n_threads < 1 ? 1 : n_threads > NNCORE_POOL_MAX_THREADS ? NNCORE_POOL_MAX_THREADS : n_threads;
    int taken = 0;
    if (wanted > 1) {
        pthread_once(&fork_handlers_once, install_fork_handlers);
        pthread_mutex_lock(&pool_lock);
        while (taken < wanted - 1) {
            worker* next = take_worker();
            if (next == NULL)
                break;
            team_workers[taken++] = next;
        }
        pthread_mutex_unlock(&pool_lock);
    }
    team.job = job;
    team.context = context;
    team.size = taken + 1;
    team.arrived = 0;
    team.generation = 0;
    team.finished = 0;
    team.spin_ns = 1000 * nncore_pool_spin_microseconds();
    team.probes = 0;
    pthread_mutex_init(&team.lock, NULL);
    pthread_cond_init(&team.changed, NULL);
    for (int t = 0; t < taken; t++) {
        worker* w = team_workers[t];
        pthread_mutex_lock(&w->lock);
        w->team = &team;
        w->index = t + 1;
        w->has_job = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }
    job(context, &team, 0);
    pthread_mutex_lock(&team.lock);
    while (team.finished < taken)
        pthread_cond_wait(&team.changed, &team.lock);
    pthread_mutex_unlock(&team.lock);
    pthread_cond_destroy(&team.changed);
    pthread_mutex_destroy(&team.lock);
    return taken + 1;
}

void nncore_team_barrier(nncore_team* team) {
    if (team->size == 1)
        return;
    unsigned generation = __atomic_load_n(&team->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&team->arrived, 1, __ATOMIC_ACQ_REL) == team->size) {
        __atomic_store_n(&team->arrived, 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&team->lock);
        __atomic_store_n(&team->generation, generation + 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&team->changed);
        pthread_mutex_unlock(&team->lock);
        return;
    }
    /* Adapt the team's budget by whether spinning pays: a spin that sees the partner arrive
     * doubles it (up to the setting), one that gives up halves it. On a busy machine, where the
     * partner waits for the very core this thread spins on, it falls to nothing; then every 16th
     * wait spins for a microsecond to notice when the partners run again. */
    int ceiling = 1000 * nncore_pool_spin_microseconds();
    int budget = __atomic_load_n(&team->spin_ns, __ATOMIC_RELAXED);
    if (budget == 0 && ceiling > 0 && __atomic_add_fetch(&team->probes, 1, __ATOMIC_RELAXED) % 16 == 0)
        budget = 1000;
    if (budget > 0) {
        double deadline = seconds_now() + 1e-9 * budget;
        for (int i = 1;; i++) {
            if (__atomic_load_n(&team->generation, __ATOMIC_ACQUIRE) != generation) {
                int grown = 2 * budget;
                __atomic_store_n(&team->spin_ns, grown < ceiling ? grown : ceiling, __ATOMIC_RELAXED);
                return;
            }
            cpu_relax();
            if (i % 64 == 0 && seconds_now() > deadline)
                break;
        }
        __atomic_store_n(&team->spin_ns, budget / 2 >= 1000 ? budget / 2 : 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_lock(&team->lock);
    while (__atomic_load_n(&team->generation, __ATOMIC_ACQUIRE) == generation)
        pthread_cond_wait(&team->changed, &team->lock);
    pthread_mutex_unlock(&team->lock);
}

int nncore_team_size(const nncore_team* team) { return team->size; }

int nncore_pool_workers(void) {
    pthread_mutex_lock(&pool_lock);
    int n = started_workers;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

int nncore_pool_threaded(void) { return 1; }

#else /* no POSIX threads: every job on the calling thread */

struct nncore_team {
    int size;
};

int nncore_pool_run(int n_threads, nncore_job job, void* context) {
    nncore_team team = {1};
    (void) n_threads;
    job(context, &team, 0);
    return 1;
}

void nncore_team_barrier(nncore_team* team) { (void) team; }
int nncore_team_size(const nncore_team* team) { return team->size; }
int nncore_pool_workers(void) { return 0; }
int nncore_pool_threaded(void) { return 0; }

#endif
