/*
 * beneath: open files and folders below a trusted root without following
 * any symlink on the way, so that a folder swapped for a symlink cannot
 * lead the daemon outside the root.
 *
 * The root itself (a configured watch folder or move_dir) is opened as
 * given; every component below it is opened relative to the one before:
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has
 * it (checked once at run time; a seccomp filter that refuses it counts as
 * "not there"), else one openat(O_NOFOLLOW | O_DIRECTORY) per component,
 * which is also how paths of PATH_MAX bytes or more are walked. A ".."
 * component is refused. Callers then act through the descriptors: fstat,
 * read, unlinkat and renameat relative to the parent folder's descriptor.
 *
 * Example: root "/srv/lab", rel "2026/03/scan.pdf": hs_beneath_parent
 * returns a descriptor of /srv/lab/2026/03 and *ret_name = "scan.pdf"; if
 * /srv/lab/2026 is now a symlink, it fails with ELOOP or ENOTDIR.
 *
 * Functions return a descriptor (O_CLOEXEC) or -1 with errno set.
 */
#ifndef HS_AGENT_BENEATH_H
#define HS_AGENT_BENEATH_H

#include <stdbool.h>

/* The folder holding rel (a path below root, no leading "/"), and rel's
 * last component in *ret_name (a pointer into rel). */
int hs_beneath_parent(const char *root, const char *rel, const char **ret_name);

/* The folder root/rel_dir ("" is root itself), created with mode 0750 for
 * each component missing when create is set. */
int hs_beneath_dir(const char *root, const char *rel_dir, bool create);

/* The same, creating what is missing, each folder made with the
 * permission bits (setuid apart) of the folder at the same relative path
 * below like, or of its parent where like has none: set with fchmod, so
 * the umask does not mask them. Example: like "/srv/lab" holding
 * "2026/ward3" as 0755, root "/srv/sent": /srv/sent/2026/ward3 is made
 * 0755 under any umask. A root made now takes like's own bits. Folders
 * that exist are left as they are. */
int hs_beneath_dir_like(const char *root, const char *rel_dir, const char *like);

/* rel's last component opened for reading from its folder dirfd: a
 * symlink is refused (ELOOP), a FIFO or device does not block. */
int hs_beneath_open_file(int dirfd, const char *name);

/* Splits a job's path into the root its opening starts from and the rest:
 * the watch folder when the path lies below it, else "/" (a file queued by
 * hand: its path was resolved when queued, so no symlink is followed
 * anywhere in it). Returns the relative part, a pointer into path; *root
 * points at watch_root or at "/". NULL when path is not absolute. */
/* Whether someone has the file open for writing, asked with a read lease
 * (F_SETLEASE), which the kernel refuses while a writer exists; fd must be
 * open read-only. 1: yes, 0: no, -1: cannot tell (errno: EACCES when the
 * file is another user's and CAP_LEASE is missing, EINVAL on file systems
 * without leases). */
int hs_writer_check(int fd);

/* True the first time it is asked in this process, false after: the
 * watcher and the uploader both check for writers, and that the answer
 * cannot be had (hs_writer_check -1) is said once, by whichever asks
 * first. */
bool hs_writer_unknown_first(void);

const char *hs_beneath_split(const char *watch_root, const char *path, const char **ret_root);

#endif
