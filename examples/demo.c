/* lunatrio's demo: the root process spawns four workers, linked and
 * monitored; worker 2 crashes. The root catches link failures as messages and
 * prints every notification it receives: a LinkDied for the crash (tagged
 * with the link's tag) and a ProcessDied for each of the four workers. */
#include <stdio.h>
#include "lunatic.h"

#define WORKERS 4
#define CRASHING 2
#define LINK_TAG_BASE 100

__attribute__((export_name("worker")))
void worker(int32_t n) {
    lunatic_sleep_ms(20 * (uint64_t)(n + 1));
    if (n == CRASHING) {
        printf("  worker %d (process %llu): crashing\n", n,
               (unsigned long long)lunatic_process_id());
        fflush(stdout);
        __builtin_trap();
    }
    printf("  worker %d (process %llu): done\n", n, (unsigned long long)lunatic_process_id());
    fflush(stdout);
}

int main(void) {
    /* A crashing linked worker must not take the root down with it. */
    lunatic_die_when_link_dies(0);
    printf("root (process %llu): spawning %d workers\n",
           (unsigned long long)lunatic_process_id(), WORKERS);
    uint64_t ids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        ids[i] = spawn_i32("worker", i, LINK_TAG_BASE + i);
        lunatic_monitor(ids[i]);
        printf("root: worker %d is process %llu (link tag %d)\n", i,
               (unsigned long long)ids[i], LINK_TAG_BASE + i);
    }
    fflush(stdout);
    int died = 0;
    while (died < WORKERS) {
        switch (lunatic_receive(NULL, 0, LUNATIC_NO_TIMEOUT)) {
        case LUNATIC_LINK_DIED: {
            int64_t tag = lunatic_get_tag();
            printf("root: LinkDied, tag %lld: worker %lld failed\n", (long long)tag,
                   (long long)(tag - LINK_TAG_BASE));
            break;
        }
        case LUNATIC_PROCESS_DIED:
            printf("root: ProcessDied, process %llu\n",
                   (unsigned long long)lunatic_get_process_id());
            died++;
            break;
        default:
            printf("root: a data message\n");
        }
        fflush(stdout);
    }
    printf("root: all %d workers are gone\n", WORKERS);
    return 0;
}
