/*
 * main.c - the floodgate daemon: options, start-up, privilege drop,
 * reload, clean stop.  The per-session work lives in glue.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libmilter/mfapi.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fg.h"
#include "glue.h"
#include "log.h"
#include "notify.h"
#include "share.h"
#include "store.h"
#include "version.h"

/* Command-line values that take precedence over the file, also at reload. */
struct overrides {
	const char *socket;
	const char *database;
	const char *user;
	const char *pid_file;
	bool verbose;
};

static struct overrides ov;
static const char *config_path = FG_DEFAULT_CONFIG;
static _Atomic bool stopping;
static char pid_path[4096];    /* the pid file written at start, if any */
/* When the signal thread last came round its loop (CLOCK_MONOTONIC ms):
 * what the watchdog goes by. */
static _Atomic int64_t housekeeping_ms;
/* Counts shared with other hosts: made at start when the configuration
 * has a redis backend, else never. */
static fg_share *share;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: floodgate [-fnvVh] [-c file] [-p socket] [-d database] "
	    "[-u user] [-P pidfile]\n"
	    "  -c file      configuration file (default %s)\n"
	    "  -f           stay in the foreground, log to stderr\n"
	    "  -n           check the configuration and exit\n"
	    "  -p socket    milter socket (unix:/path, inet:PORT@HOST, "
	    "inet6:PORT@HOST)\n"
	    "  -d database  SQLite database file\n"
	    "  -u user      user to run as after binding\n"
	    "  -P pidfile   pid file (\"\" for none)\n"
	    "  -v           log at debug level\n"
	    "  -V           print the version and exit\n"
	    "  -h           this help\n", FG_DEFAULT_CONFIG);
}

static void
diag_stderr(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	/* Before the log is open: in the journal too, with its level. */
	fprintf(stderr, "%s%s\n",
	        fg_log_prefix(is_warning ? FG_LOG_WARNING : FG_LOG_ERR), line);
}

static void
diag_log(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	fg_log(is_warning ? FG_LOG_WARNING : FG_LOG_ERR, "%s", line);
}

static int
replace_string(char **dst, const char *src)
{
	char *d = strdup(src);

	if (d == NULL)
		return FG_ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

/* Applies the command line to a fresh snapshot, before anyone sees it. */
static int
apply_overrides(struct fg_config *cfg)
{
	if (ov.socket != NULL && replace_string(&cfg->socket, ov.socket) != 0)
		return FG_ENOMEM;
	if (ov.database != NULL &&
	    replace_string(&cfg->database, ov.database) != 0)
		return FG_ENOMEM;
	if (ov.user != NULL && replace_string(&cfg->user, ov.user) != 0)
		return FG_ENOMEM;
	if (ov.pid_file != NULL &&
	    replace_string(&cfg->pid_file, ov.pid_file) != 0)
		return FG_ENOMEM;
	if (ov.verbose)
		cfg->log_level = FG_LOG_DEBUG;
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- reload and housekeeping -------------------------------------- */

static _Atomic int64_t started_ms, config_ms;

/* The daemon's part of the status row (store.h); on the writer thread. */
static void
status_info(void *arg, struct fg_store_status_info *out)
{
	struct fg_config *c = fg_config_acquire();

	(void)arg;
	out->pid = (int64_t)getpid();
	snprintf(out->version, sizeof(out->version), "%s", FG_VERSION);
	out->started_ms = atomic_load(&started_ms);
	out->config_ms = atomic_load(&config_ms);
	out->tarpit = fg_glue_tarpit();
	if (c != NULL) {
		snprintf(out->config, sizeof(out->config), "%s",
		         c->path != NULL ? c->path : "");
		out->tarpit_max = c->max_delayed_sessions;
		fg_config_release(c);
	}
	if (share != NULL) {
		struct fg_share_status ss;

		fg_share_get_status(share, &ss);
		snprintf(out->shared_state, sizeof(out->shared_state), "%s",
		         fg_share_state_name(ss.state));
		snprintf(out->shared_node, sizeof(out->shared_node), "%s", ss.node);
		snprintf(out->shared_server, sizeof(out->shared_server), "%s",
		         ss.server);
		snprintf(out->shared_reason, sizeof(out->shared_reason), "%s",
		         ss.state == FG_SHARE_DEGRADED ? ss.reason : "");
		out->shared_peers = ss.peers;
		out->shared_sync_ms = ss.last_sync_ms;
		out->shared_skew_ms = ss.skew_ms;
	}
}

static void
reload(void)
{
	struct fg_config *cfg, *old;
	int rc;

	fg_log(FG_LOG_INFO, "reloading %s", config_path);
	fg_notify_reloading("reloading %s", config_path);
	rc = fg_config_load(config_path, &cfg, diag_log, NULL);
	if (rc == 0)
		rc = apply_overrides(cfg);
	if (rc != 0) {
		if (cfg != NULL)
			fg_config_release(cfg);
		fg_log(FG_LOG_ERR, "reload failed (%s): keeping the running "
		       "configuration", fg_strerror(rc));
		fg_notify_ready("reload of %s failed (%s), running on the "
		                "previous configuration", config_path,
		                fg_strerror(rc));
		return;
	}
	old = fg_config_acquire();
	if (old != NULL) {
		if (strcmp(old->socket, cfg->socket) != 0 ||
		    strcmp(old->database, cfg->database) != 0 ||
		    strcmp(old->user, cfg->user) != 0)
			fg_log(FG_LOG_WARNING, "socket, database and user "
			       "changes take effect at the next restart");
		fg_config_release(old);
	}
	fg_log_set_level(cfg->log_level);
	fg_log_set_syslog(cfg->syslog_socket,
	                  fg_log_facility_code(cfg->syslog_facility));
	if (share != NULL)
		fg_share_configure(share, cfg);
	else if (cfg->shared.backend == FG_SHARE_REDIS)
		fg_log(FG_LOG_WARNING, "shared: sharing counts takes effect at "
		       "the next restart");
	fg_config_publish(cfg);
	atomic_store(&config_ms, now_ms());
	fg_log(FG_LOG_INFO, "configuration reloaded: %zu rules", cfg->nrules);
	fg_notify_ready("serving on %s, %zu rules", cfg->socket, cfg->nrules);
}

/* The watchdog's question: has the signal thread, which reloads and
 * expires the store's memory, been round its loop of a second lately? */
static bool
healthy(void *arg, int64_t interval_ms)
{
	(void)arg;
	return mono_ms() - atomic_load(&housekeeping_ms) < interval_ms;
}

/* SIGUSR1 is blocked in every thread; this one waits for it, and runs
 * store housekeeping every few seconds in between. */
static void *
signal_thread(void *arg)
{
	fg_store *st = arg;
	sigset_t set;
	int64_t last_expire = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (!atomic_load(&stopping)) {
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		int64_t now = now_ms();

		atomic_store(&housekeeping_ms, mono_ms());
		if (sig == SIGUSR1)
			reload();
		if (now - last_expire >= 5000) {
			fg_store_expire(st, now);
			last_expire = now;
		}
	}
	return NULL;
}

/* ---- start-up helpers --------------------------------------------- */

/* The share, when the configuration asks for one: the store is open,
 * no session has started.  Without it the daemon runs alone. */
static void
start_sharing(const struct fg_config *cfg, fg_store *st)
{
	int rc;

	if (cfg->shared.backend != FG_SHARE_REDIS)
		return;
	rc = fg_share_attach(cfg, st, &share);
	if (rc != 0) {
		fg_log(FG_LOG_ERR, "shared: cannot start (%s): counting on this "
		       "host alone", fg_strerror(rc));
		return;
	}
	fg_glue_set_share(share);
	fg_log(FG_LOG_INFO, "shared: counts shared through %s as node %s",
	       cfg->shared.server, cfg->shared.node);
}

static int
daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static const char *
unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

/*
 * The pid file, written as root before the drop.  Whatever is at the
 * path goes first (a stale file, or a link someone placed), and the new
 * file is created with O_EXCL, so the write can only land in a file of
 * our own; it stays root's, so that the user cannot point it at another
 * process.
 */
static int
write_pid_file(const char *path)
{
	char buf[32];
	int fd, n;

	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/*
 * The database directory, when it is missing: created by root (its parent
 * is usually root's), then given to the user through a descriptor of the
 * directory just made, never by path.  The database itself is opened
 * after the drop, by the user, in this directory.
 */
static int
make_db_dir(const char *db, uid_t uid, gid_t gid)
{
	char path[PATH_MAX];
	char *slash;
	struct stat sb;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s", db);
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return 0;
	*slash = '\0';
	if (lstat(path, &sb) == 0 || errno != ENOENT)
		return 0;     /* there (the store checks it), or not ours */
	if (mkdir(path, 0750) != 0)
		return -1;
	if (uid == (uid_t)-1)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* Still the directory we made: root's, nobody else's to swap in. */
	if (fstat(fd, &sb) != 0 || sb.st_uid != geteuid() ||
	    fchown(fd, uid, gid) != 0)
		rc = -1;
	close(fd);
	return rc;
}

/*
 * Opens the milter socket; libmilter binds and listens here, and accepts
 * only in smfi_main().  A unix socket is born with its final mode and
 * group, so nothing is changed by path afterwards (where the directory
 * is another user's, such a change could be made to land on a file they
 * put there): the umask gives the mode, and as root the effective group
 * of the moment gives the group.  Started as another user, who cannot
 * take a supplementary group as effective group, the group is set after
 * the bind without following a link: such a process has no privilege
 * that a swapped file could borrow.
 */
static int
open_socket(const struct fg_config *cfg, gid_t sock_gid)
{
	const char *upath = unix_path(cfg->socket);
	gid_t egid = getegid();
	bool as_group = upath != NULL && sock_gid != (gid_t)-1 &&
	                sock_gid != egid && geteuid() == 0;
	mode_t old;
	struct stat sb;
	int rc;

	if (as_group && setegid(sock_gid) != 0)
		return -1;
	old = umask(~(mode_t)cfg->socket_mode & 0777);
	rc = smfi_opensocket(true);
	umask(old);
	if (as_group && setegid(egid) != 0)
		return -1;
	if (rc != MI_SUCCESS)
		return -1;
	if (upath == NULL || sock_gid == (gid_t)-1)
		return 0;
	if (!as_group) {
		if (fchownat(AT_FDCWD, upath, (uid_t)-1, sock_gid,
		             AT_SYMLINK_NOFOLLOW) != 0)
			fg_log(FG_LOG_WARNING, "socket %s: cannot set group "
			       "%s: %s", upath, cfg->socket_group,
			       strerror(errno));
	} else if (lstat(upath, &sb) == 0 && sb.st_gid != sock_gid) {
		/* A set-group-ID directory gives its own group. */
		fg_log(FG_LOG_WARNING, "socket %s: group is %ld, not "
		       "socket_group %s (set-group-ID directory?)", upath,
		       (long)sb.st_gid, cfg->socket_group);
	}
	return 0;
}

/* Every signal the daemon handles is taken by a thread that waits for
 * it; blocked before anything else, a signal that comes during start-up
 * waits for that thread instead of killing the process.  A vanished MTA
 * must not kill us with SIGPIPE. */
static void
block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	/* libmilter's own thread sigwait()s for these; every other thread
	 * (ours start before smfi_main) must keep them blocked. */
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int
drop_privileges(const struct passwd *pw)
{
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return -1;
	/* Make sure there is no way back. */
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -1;
	return 0;
}

/* ---- main --------------------------------------------------------- */

/* A failed start: gives back what main() holds, so that nothing is left
 * for a leak checker to report (which would change the exit status). */
static int
start_failed(struct fg_config *cfg, fg_store *st, int status)
{
	if (st != NULL)
		fg_store_close(st);
	if (cfg != NULL)
		fg_config_release(cfg);
	if (pid_path[0] != '\0')
		unlink(pid_path);
	return status;
}

int
main(int argc, char **argv)
{
	struct fg_config *cfg;
	struct fg_store_options so;
	fg_store *st = NULL;
	struct passwd *pw = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1, sock_gid = (gid_t)-1;
	bool foreground = false, check = false;
	char err[512];
	pthread_t sigthr;
	int ch, rc, status = 0;

	block_signals();
	/* libmilter runs each connection on a thread of its own, and glibc
	 * would give up to eight malloc arenas per CPU to them, each keeping
	 * its own free memory: under a flood of distinct clients that is
	 * megabytes of RSS for nothing.  The callbacks allocate little. */
	mallopt(M_ARENA_MAX, 4);
	fg_store_init_process();

	while ((ch = getopt(argc, argv, "c:fnp:d:u:P:vVh")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check = true; break;
		case 'p': ov.socket = optarg; break;
		case 'd': ov.database = optarg; break;
		case 'u': ov.user = optarg; break;
		case 'P': ov.pid_file = optarg; break;
		case 'v': ov.verbose = true; break;
		case 'V': {
			unsigned int ma = 0, mi = 0, pl = 0;
			smfi_version(&ma, &mi, &pl);
			printf("floodgate %s (libmilter %u.%u.%u)\n", FG_VERSION,
			       ma, mi, pl);
			return 0;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* stderr (or the journal) until the configuration says more. */
	fg_log_open("floodgate", true, FG_LOG_INFO);

	rc = fg_config_load(config_path, &cfg, diag_stderr, NULL);
	if (rc == 0)
		rc = apply_overrides(cfg);
	if (rc == 0 && ov.socket != NULL) {
		/* The command line is checked like the file. */
		struct fg_config *probe;
		char text[1200];
		snprintf(text, sizeof(text), "socket = \"%s\"; "
		         "socket_public = %s;", ov.socket,
		         cfg->socket_public ? "true" : "false");
		if (strchr(ov.socket, '"') != NULL ||
		    fg_config_load_string(text, "-p", &probe, diag_stderr,
		                          NULL) != 0)
			rc = FG_ECONFIG;
		else
			fg_config_release(probe);
	}
	if (rc == 0 && ov.database != NULL && ov.database[0] != '/' &&
	    strcmp(ov.database, ":memory:") != 0) {
		fprintf(stderr, "-d: database must be an absolute path\n");
		rc = FG_ECONFIG;
	}
	if (rc != 0) {
		if (rc == FG_ENOMEM)
			fprintf(stderr, "%s: out of memory\n", config_path);
		if (cfg != NULL)
			fg_config_release(cfg);
		return check ? 1 : 78;
	}
	if (check) {
		printf("configuration OK\n");
		fg_config_release(cfg);
		return 0;
	}

	if (geteuid() == 0) {
		if (cfg->user[0] == '\0' && !cfg->allow_root) {
			fg_log(FG_LOG_ERR, "refusing to run as root: set user "
			       "(or allow_root = true)");
			return start_failed(cfg, NULL, 78);
		}
		if (cfg->user[0] != '\0') {
			pw = getpwnam(cfg->user);
			if (pw == NULL) {
				fg_log(FG_LOG_ERR, "user %s: no such user",
				       cfg->user);
				return start_failed(cfg, NULL, 78);
			}
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		}
	}
	if (geteuid() != 0 && cfg->user[0] != '\0') {
		struct passwd *me = getpwuid(geteuid());
		if (me == NULL || strcmp(me->pw_name, cfg->user) != 0)
			fg_log(FG_LOG_WARNING, "not started as root: running "
			       "as uid %ld, user %s not used",
			       (long)geteuid(), cfg->user);
	}
	if (cfg->socket_group[0] != '\0') {
		struct group *gr = getgrnam(cfg->socket_group);
		if (gr == NULL) {
			fg_log(FG_LOG_ERR, "socket_group %s: no such group",
			       cfg->socket_group);
			return start_failed(cfg, NULL, 78);
		}
		sock_gid = gr->gr_gid;
	}

	fg_log_set_syslog(cfg->syslog_socket,
	                  fg_log_facility_code(cfg->syslog_facility));
	fg_log_open("floodgate", foreground, cfg->log_level);
	if (!foreground && daemonize() != 0) {
		fg_log(FG_LOG_ERR, "cannot daemonize: %s", strerror(errno));
		return start_failed(cfg, NULL, 71);
	}

	if (fg_glue_register() != 0 || smfi_setconn(cfg->socket) != MI_SUCCESS) {
		fg_log(FG_LOG_ERR, "cannot register with libmilter");
		return start_failed(cfg, NULL, 71);
	}
	smfi_settimeout((int)(cfg->milter_timeout_ms / 1000));
	if (open_socket(cfg, sock_gid) != 0) {
		fg_log(FG_LOG_ERR, "cannot open socket %s: %s", cfg->socket,
		       strerror(errno));
		return start_failed(cfg, NULL, 71);
	}

	if (make_db_dir(cfg->database, uid, gid) != 0)
		fg_log(FG_LOG_WARNING, "cannot create the directory of %s: %s",
		       cfg->database, strerror(errno));
	if (cfg->pid_file[0] != '\0') {
		if (write_pid_file(cfg->pid_file) != 0)
			fg_log(FG_LOG_WARNING, "pid file %s: %s",
			       cfg->pid_file, strerror(errno));
		else
			snprintf(pid_path, sizeof(pid_path), "%s",
			         cfg->pid_file);
	}

	if (pw != NULL && drop_privileges(pw) != 0) {
		fg_log(FG_LOG_ERR, "cannot become user %s: %s", cfg->user,
		       strerror(errno));
		return start_failed(cfg, NULL, 71);
	}

	/* Opened by the user it runs as: what it creates is the user's
	 * from the start, and a link placed in its directory can lead it
	 * nowhere the user could not go anyway. */
	memset(&so, 0, sizeof(so));
	so.path = cfg->database;
	so.horizon_ms = cfg->horizon_ms;
	so.retention_ms = cfg->retention_ms;
	so.flush_interval_ms = cfg->flush_interval_ms;
	so.queue_size = (size_t)cfg->queue_size;
	so.memory_limit = (uint64_t)cfg->memory_limit;
	so.max_database_size = (uint64_t)cfg->max_database_size;
	so.file_mode = FG_STORE_DEFAULT_MODE;
	rc = fg_store_open(&so, now_ms(), &st, err, sizeof(err));
	if (rc != 0) {
		fg_log(FG_LOG_ERR, "database %s: %s", cfg->database, err);
		return start_failed(cfg, NULL, 74);
	}

	start_sharing(cfg, st);
	fg_config_publish(cfg);
	cfg = NULL;
	fg_glue_init(st);
	atomic_store(&started_ms, now_ms());
	atomic_store(&config_ms, now_ms());
	fg_store_set_status_fn(st, status_info, NULL);
	atomic_store(&housekeeping_ms, mono_ms());
	if (pthread_create(&sigthr, NULL, signal_thread, st) != 0) {
		fg_log(FG_LOG_ERR, "cannot start the signal thread");
		fg_config_publish(NULL);
		return start_failed(NULL, st, 71);
	}
	{
		struct fg_config *c = fg_config_acquire();
		fg_log(FG_LOG_INFO, "floodgate %s started on %s, database %s, "
		       "%zu rules, running as uid %ld", FG_VERSION, c->socket,
		       c->database, c->nrules, (long)getuid());
		/* The socket is open and the privileges are dropped. */
		fg_notify_ready("serving on %s, %zu rules", c->socket,
		                c->nrules);
		fg_config_release(c);
	}
	if (fg_watchdog_start(healthy, NULL) != 0)
		fg_log(FG_LOG_WARNING, "cannot start the watchdog thread: "
		       "systemd will restart the daemon");

	if (smfi_main() != MI_SUCCESS) {
		fg_log(FG_LOG_ERR, "libmilter stopped with an error");
		status = 1;
	}

	fg_notify_stopping("stopping: writing what is queued to the database");
	fg_watchdog_stop();
	atomic_store(&stopping, true);
	pthread_join(sigthr, NULL);
	fg_glue_shutdown();
	fg_share_stop(share);
	{
		/* The totals, once: drops are otherwise only seen in a warning
		 * logged at most once a minute. */
		struct fg_store_stats ss;
		int frc;

		fg_store_get_stats(st, &ss);
		/* A failing database gets its own bounded wait in close. */
		frc = ss.healthy ? fg_store_flush(st, 2000) : FG_EBUSY;
		fg_store_get_stats(st, &ss);
		fg_log(frc == 0 && ss.dropped == 0 ? FG_LOG_INFO
		                                   : FG_LOG_WARNING,
		       "store totals: %llu events recorded; rows (events and "
		       "verdicts): %llu written, %llu dropped with the queue "
		       "full, %zu still queued; %llu failed commits",
		       (unsigned long long)ss.recorded,
		       (unsigned long long)ss.written,
		       (unsigned long long)ss.dropped, ss.queued,
		       (unsigned long long)ss.write_errors);
	}
	fg_store_close(st);
	fg_share_detach(share);
	if (pid_path[0] != '\0' && unlink(pid_path) != 0 && errno != ENOENT)
		fg_log(FG_LOG_WARNING, "cannot remove pid file %s: %s",
		       pid_path, strerror(errno));
	fg_config_publish(NULL);
	fg_log(FG_LOG_INFO, "stopped");
	fg_log_close();
	return status;
}
