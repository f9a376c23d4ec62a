/*
 * fake_milter - a scripted, misbehaving milter server, for testing that a
 * milter client survives malformed, oversized, truncated and missing
 * replies.  Not libmilter: it answers with exactly the bytes it is given.
 *
 *   fake_milter -p /path/to/socket RESPONSE...
 *
 * For every connection (one at a time), the k-th packet the client sends
 * is answered with the k-th RESPONSE: hex digits (spaces allowed), sent
 * as they are.  A RESPONSE ending in "!" closes the connection after
 * sending; the word "silent" sends nothing.  After the last RESPONSE it
 * reads until the client closes.  Runs until killed.
 *
 * The hex must include the length words: "00000001 63" is SMFIR_CONTINUE.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes spec into buf; *close_after for a trailing '!'.  -1 if bad. */
static ssize_t
decode(const char *spec, unsigned char *buf, size_t size, bool *close_after)
{
	size_t n = 0;
	int hi = -1;

	*close_after = false;
	if (strcmp(spec, "silent") == 0)
		return 0;
	for (const char *p = spec; *p; p++) {
		if (*p == ' ' || *p == ':')
			continue;
		if (*p == '!' && p[1] == '\0') {
			*close_after = true;
			break;
		}
		int v = hexval((unsigned char)*p);
		if (v < 0 || n >= size)
			return -1;
		if (hi < 0) {
			hi = v;
		} else {
			buf[n++] = (unsigned char)(hi * 16 + v);
			hi = -1;
		}
	}
	return hi < 0 ? (ssize_t)n : -1;
}

static bool
read_full(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Reads and drops one packet; false at EOF or on a silly length. */
static bool
skip_packet(int fd)
{
	unsigned char hdr[4], junk[4096];
	uint32_t len;

	if (!read_full(fd, hdr, sizeof(hdr)))
		return false;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	      (uint32_t)hdr[2] << 8 | hdr[3];
	if (len > 16u * 1024 * 1024)
		return false;
	while (len > 0) {
		size_t n = len < sizeof(junk) ? len : sizeof(junk);
		if (!read_full(fd, junk, n))
			return false;
		len -= (uint32_t)n;
	}
	return true;
}

static void
serve(int fd, int nresp, char **resp)
{
	static unsigned char buf[1 << 16];

	for (int i = 0; i < nresp; i++) {
		bool close_after;
		ssize_t n;
		if (!skip_packet(fd))
			return;
		n = decode(resp[i], buf, sizeof(buf), &close_after);
		if (n > 0 && write(fd, buf, (size_t)n) != n)
			return;
		if (close_after)
			return;
	}
	while (skip_packet(fd))
		;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sun;
	const char *path = NULL;
	int ch, lfd;

	while ((ch = getopt(argc, argv, "p:")) != -1) {
		if (ch != 'p')
			goto usage;
		path = optarg;
	}
	if (path == NULL || optind >= argc)
		goto usage;
	for (int i = optind; i < argc; i++) {
		static unsigned char buf[1 << 16];
		bool c;
		if (decode(argv[i], buf, sizeof(buf), &c) < 0) {
			fprintf(stderr, "fake_milter: bad response \"%s\"\n",
			        argv[i]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "fake_milter: path too long\n");
		return 2;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, 16) < 0) {
		perror("fake_milter");
		return 1;
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("fake_milter: accept");
			return 1;
		}
		serve(fd, argc - optind, argv + optind);
		close(fd);
	}
usage:
	fprintf(stderr, "usage: fake_milter -p PATH RESPONSE...\n");
	return 2;
}
