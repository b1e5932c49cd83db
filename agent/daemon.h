/*
 * daemon: `healsync run`, the whole life of the process on one sd-event
 * loop: signals, the queue's wake-up file, the bandwidth timetable, the
 * uploader, the status file and systemd notifications.
 *
 * Takes ownership of cfg (it is replaced on reload). Returns an exit code.
 */
#ifndef HS_AGENT_DAEMON_H
#define HS_AGENT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

/* The file `healsync status` and `healsync check` read, in state_dir;
 * written atomically, mode 0640. */
#define HS_STATUS_FILE "status.json"
/* Touched by CLI commands that change the queue, watched by the daemon. */
#define HS_WAKEUP_FILE "wakeup"

int hs_daemon_run(const char *config_path, struct hs_config *cfg);

/*
 * Makes state_dir (mode 0750: its group may read status.json, 0640; the
 * queue and the rest stay 0600) if it is missing and checks that it is a
 * folder owned by the user healsync runs as that neither its group nor
 * others may write: whoever can write there can replace queue.db or plant
 * links. For a command (daemon false) run by root, the folder may belong
 * to another user: an administrator looks at the service's queue with
 * `sudo healsync jobs`. Returns 0, or -1 with one line in err saying what
 * is wrong.
 */
int hs_state_dir_check(const char *dir, bool daemon, char *err, size_t len);

#endif
