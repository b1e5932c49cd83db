/*
 * refusal: why the system refused this process a change in a folder
 * (EACCES, EPERM, EROFS), found out by looking rather than guessed, and
 * told as one line that names the fix.
 *
 *  - sandbox: EROFS where this process sees a read-only mount of a file
 *    system that is itself writable (in /proc/self/mountinfo the mount's
 *    own options say "ro", its file system's say "rw"). That is what
 *    systemd's ProtectSystem= does (or any read-only bind mount). The fix
 *    is a ReadWritePaths= drop-in naming the configured folder above it.
 *  - read-only: EROFS and the file system itself is mounted read-only.
 *  - access: this process's user may not write or search the folder
 *    (faccessat with AT_EACCESS, so ACLs count). The fix names the folder,
 *    its owner, group and mode, the user, and a default ACL on the
 *    configured folder so that the folders a program makes there later
 *    are writable too (the writer's umask decides their mode otherwise).
 *  - sticky: the folder is sticky (+t) and neither it nor the file is
 *    this user's: only their owners may rename or remove the file.
 *  - policy: the modes allow it, so a security module (SELinux, AppArmor)
 *    or a file attribute (chattr +i, +a) refused.
 *
 * Example: /srv/exports/lab/2026-12/ward3 made by the lab program as
 * alice:lab 0755, healsync may not rename scan.pdf in it:
 *
 *   /srv/exports/lab/2026-12/ward3: user healsync (group healsync) may not
 *   write there (owner alice, group lab, mode 0755; it needs write and
 *   search, w and x); fix: setfacl -R -m u:healsync:rwX -m
 *   d:u:healsync:rwX /srv/exports/lab (this folder, the others below
 *   /srv/exports/lab and those made there later), or where only healsync
 *   writes: chown -R healsync: /srv/exports/lab
 */
#ifndef HS_AGENT_REFUSAL_H
#define HS_AGENT_REFUSAL_H

#include <stdbool.h>

enum hs_refusal {
	HS_REFUSAL_NONE,      /* err is not a refusal, or nothing refuses now */
	HS_REFUSAL_SANDBOX,   /* read-only view of a writable file system */
	HS_REFUSAL_READ_ONLY, /* the file system is mounted read-only */
	HS_REFUSAL_ACCESS,    /* the user lacks write or search on the folder */
	HS_REFUSAL_STICKY,    /* a sticky folder of another owner */
	HS_REFUSAL_POLICY,    /* the modes allow it; something else refuses */
};

/* Whether err is one of the refusals this module explains. */
bool hs_refusal_errno(int err);

/* dir: the folder (absolute) where a change was refused with err; when it
 * does not exist, its nearest existing parent is looked at (a folder that
 * could not be made). top: the configured folder above it, which the fix
 * names. owner_uid: the file's owner when a file was renamed or removed,
 * -1 otherwise (for the sticky case). Returns the kind and, unless
 * HS_REFUSAL_NONE, the line in *ret_line (the caller frees it; NULL when
 * out of memory). */
enum hs_refusal hs_refusal_explain(const char *dir, const char *top, int err, long owner_uid,
				   char **ret_line);

/* Whether this process may create and remove entries in dir: 0 yes, else
 * the errno faccessat gave (EACCES, EROFS, ENOENT, ...). */
int hs_refusal_probe(const char *dir);

#endif
