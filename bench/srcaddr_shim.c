/*
 * srcaddr_shim.c - an LD_PRELOAD shim that spreads a load generator's
 * TCP connections to 127.0.0.1 over many loopback source addresses, so
 * that an MTA (and the milter behind it) sees many clients instead of
 * one.  Postfix's smtp-source has no option to choose a source address.
 *
 *   FG_BENCH_SRC_NETS=4096 LD_PRELOAD=.../fg_srcaddr.so smtp-source ...
 *
 * With FG_BENCH_SRC_NETS=N (1..65024), every connect() of an AF_INET
 * socket to 127.0.0.1 is preceded by a bind() to a random address
 * 127.A.B.C out of N /24s (127.1.0.0/24 onwards, C in 1..254); Linux
 * routes all of 127.0.0.0/8 to the loopback interface, so nothing leaves
 * the machine.  Without the variable, or for any other destination,
 * connect() is passed through untouched.  A failed bind() is ignored
 * (the connection then comes from the usual address).
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

typedef int connect_fn(int, const struct sockaddr *, socklen_t);

static connect_fn *real_connect;
static unsigned nets;
static uint64_t rng;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void
init(void)
{
	const char *v = getenv("FG_BENCH_SRC_NETS");
	struct timespec ts;

	real_connect = (connect_fn *)dlsym(RTLD_NEXT, "connect");
	if (v != NULL) {
		long n = strtol(v, NULL, 10);
		if (n > 0 && n <= 65024)
			nets = (unsigned)n;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

static uint64_t
next(void)
{
	uint64_t z;

	pthread_mutex_lock(&lock);
	z = (rng += UINT64_C(0x9e3779b97f4a7c15));
	pthread_mutex_unlock(&lock);
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	pthread_once(&once, init);
	if (real_connect == NULL)
		return -1;
	if (nets > 0 && sa != NULL && sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *to = (const struct sockaddr_in *)sa;

		if (to->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
			uint64_t r = next();
			unsigned net = 256 + (unsigned)(r % nets);
			unsigned host = 1 + (unsigned)((r >> 32) % 254);
			struct sockaddr_in from = {
				.sin_family = AF_INET,
				.sin_port = 0,
				.sin_addr.s_addr = htonl(0x7f000000u |
				                         (net << 8) | host),
			};
			int one = 1;

			(void)setsockopt(fd, IPPROTO_IP,
			                 IP_BIND_ADDRESS_NO_PORT, &one,
			                 sizeof(one));
			(void)bind(fd, (const struct sockaddr *)&from,
			           sizeof(from));
		}
	}
	return real_connect(fd, sa, len);
}
