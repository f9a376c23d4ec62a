/* rcptlist.c - see rcptlist.h.  A sorted array searched by bsearch. */
#include "rcptlist.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"

#define ENTRY_MAX 320

struct fg_rcptlist {
	char **addrs;     /* "user@domain", lower case, sorted */
	size_t naddrs;
	char **domains;   /* "domain", lower case, sorted */
	size_t ndomains;
};

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
push(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		char **nv = realloc(*v, c * sizeof(**v));
		if (nv == NULL)
			return false;
		*v = nv;
		*cap = c;
	}
	if (((*v)[*n] = strdup(s)) == NULL)
		return false;
	(*n)++;
	return true;
}

/* "<User@Example.ORG.>" → "user@example.org"; false if unusable. */
static bool
normalise(const char *in, char *out, size_t size)
{
	size_t o = 0;

	while (isspace((unsigned char)*in) || *in == '<')
		in++;
	for (; *in != '\0' && *in != '>' && !isspace((unsigned char)*in); in++) {
		if ((unsigned char)*in < 0x21 || (unsigned char)*in >= 0x7f)
			return false;
		if (o + 1 >= size)
			return false;
		out[o++] = (char)tolower((unsigned char)*in);
	}
	while (o > 0 && out[o - 1] == '.')
		o--;
	out[o] = '\0';
	return o > 0;
}

void
fg_rcptlist_free(fg_rcptlist *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->naddrs; i++)
		free(l->addrs[i]);
	for (size_t i = 0; i < l->ndomains; i++)
		free(l->domains[i]);
	free(l->addrs);
	free(l->domains);
	free(l);
}

int
fg_rcptlist_load(const char *path, fg_rcptlist **out,
                 void (*diag)(void *arg, const char *line), void *arg)
{
	fg_rcptlist *l;
	FILE *fp;
	char line[1024], msg[1200], e[ENTRY_MAX];
	size_t acap = 0, dcap = 0;
	int lineno = 0, errors = 0;

	*out = NULL;
	if ((fp = fopen(path, "r")) == NULL) {
		int err = errno;
		snprintf(msg, sizeof(msg), "%s: cannot open: %s", path,
		         strerror(err));
		if (diag != NULL)
			diag(arg, msg);
		return err == ENOENT ? FG_ENOENT : FG_ECONFIG;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		fclose(fp);
		return FG_ENOMEM;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *hash = strchr(line, '#');
		const char *why = NULL;

		lineno++;
		if (hash != NULL)
			*hash = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			continue;
		if (!normalise(p, e, sizeof(e))) {
			why = "not an address or @domain";
		} else if (e[0] == '@') {
			if (e[1] == '\0' || strchr(e + 1, '@') != NULL)
				why = "not a domain";
			else if (!push(&l->domains, &l->ndomains, &dcap, e + 1))
				goto nomem;
		} else {
			char *at = strrchr(e, '@');
			if (at == NULL || at == e || at[1] == '\0')
				why = "expected user@domain or @domain";
			else if (!push(&l->addrs, &l->naddrs, &acap, e))
				goto nomem;
		}
		if (why != NULL) {
			snprintf(msg, sizeof(msg), "%s:%d: %s", path, lineno, why);
			if (diag != NULL)
				diag(arg, msg);
			errors++;
		}
	}
	if (ferror(fp)) {
		/* A directory opens fine and fails at the first read: not an
		 * empty list. */
		int err = errno;
		snprintf(msg, sizeof(msg), "%s: cannot read: %s", path,
		         strerror(err));
		if (diag != NULL)
			diag(arg, msg);
		errors++;
	}
	fclose(fp);
	if (errors > 0) {
		fg_rcptlist_free(l);
		return FG_ECONFIG;
	}
	if (l->naddrs > 0)
		qsort(l->addrs, l->naddrs, sizeof(*l->addrs), cmp);
	if (l->ndomains > 0)
		qsort(l->domains, l->ndomains, sizeof(*l->domains), cmp);
	*out = l;
	return 0;
nomem:
	fclose(fp);
	fg_rcptlist_free(l);
	return FG_ENOMEM;
}

size_t
fg_rcptlist_count(const fg_rcptlist *l)
{
	return l != NULL ? l->naddrs + l->ndomains : 0;
}

int
fg_rcptlist_check(const fg_rcptlist *l, const char *rcpt)
{
	char e[ENTRY_MAX];
	const char *at, *key;

	if (l == NULL || rcpt == NULL || !normalise(rcpt, e, sizeof(e)))
		return -1;
	at = strrchr(e, '@');
	if (at == NULL || at[1] == '\0')
		return -1;
	key = at + 1;
	if (l->ndomains == 0 ||
	    bsearch(&key, l->domains, l->ndomains, sizeof(char *), cmp) == NULL)
		return -1;
	key = e;
	return l->naddrs > 0 &&
	       bsearch(&key, l->addrs, l->naddrs, sizeof(char *), cmp) != NULL;
}
