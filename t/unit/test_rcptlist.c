/* test_rcptlist.c - the operator's list of valid recipients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fg.h"
#include "rcptlist.h"
#include "tap.h"

static char diag_text[4096];

static void
diag(void *arg, const char *line)
{
	(void)arg;
	strncat(diag_text, line, sizeof(diag_text) - strlen(diag_text) - 2);
	strcat(diag_text, "\n");
}

static void
cfg_diag(void *arg, bool w, const char *line)
{
	(void)w;
	diag(arg, line);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
}

int
main(void)
{
	char dir[] = "/tmp/fg-rcptlist.XXXXXX", path[256], conf[512];
	fg_rcptlist *l = NULL;
	struct fg_config *cfg = NULL;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/valid", dir);
	write_file(path, "# valid recipients\n@Example.ORG\nalice@example.org\n"
	                 "  <Bob@Example.org>  # comment\n@second.test.\n\n");
	is_int(fg_rcptlist_load(path, &l, diag, NULL), 0, "a good list loads");
	is_int(fg_rcptlist_count(l), 4, "four entries");
	is_int(fg_rcptlist_check(l, "<alice@example.org>"), 1, "listed user valid");
	is_int(fg_rcptlist_check(l, "ALICE@EXAMPLE.ORG"), 1, "case-insensitive");
	is_int(fg_rcptlist_check(l, "bob@example.org."), 1, "trailing dot");
	is_int(fg_rcptlist_check(l, "<mallory@example.org>"), 0,
	       "unlisted user of a covered domain is invalid");
	is_int(fg_rcptlist_check(l, "anyone@second.test"), 0,
	       "a covered domain with no users: all invalid");
	is_int(fg_rcptlist_check(l, "x@elsewhere.test"), -1,
	       "an uncovered domain is left to the MTA");
	is_int(fg_rcptlist_check(l, "nodomain"), -1, "no domain: MTA decides");
	is_int(fg_rcptlist_check(l, NULL), -1, "NULL: MTA decides");
	is_int(fg_rcptlist_check(NULL, "a@b"), -1, "no list: MTA decides");
	fg_rcptlist_free(l);

	write_file(path, "@ok.test\nnot an address\n@\nuser@\n");
	diag_text[0] = '\0';
	is_int(fg_rcptlist_load(path, &l, diag, NULL), FG_ECONFIG,
	       "a bad list is refused");
	ok(l == NULL, "no list on error");
	ok(strstr(diag_text, ":2: ") != NULL && strstr(diag_text, ":3: ") &&
	   strstr(diag_text, ":4: "), "every bad line reported with its number");

	snprintf(conf, sizeof(conf), "valid_recipients = \"%s/missing\";", dir);
	diag_text[0] = '\0';
	is_int(fg_config_load_string(conf, "x.conf", &cfg, cfg_diag, NULL),
	       FG_ECONFIG, "a config naming a missing list is refused");
	ok(strstr(diag_text, "cannot open") != NULL, "and says why");

	diag_text[0] = '\0';
	is_int(fg_rcptlist_load(dir, &l, diag, NULL), FG_ECONFIG,
	       "a directory is refused, not read as an empty list");
	ok(l == NULL && strstr(diag_text, "cannot read") != NULL,
	   "and says why");

	write_file(path, "@ok.test\nalice@ok.test\n");
	snprintf(conf, sizeof(conf), "valid_recipients = \"%s\";", path);
	is_int(fg_config_load_string(conf, "x.conf", &cfg, cfg_diag, NULL), 0,
	       "a config with a list loads");
	ok(cfg != NULL && cfg->valid_rcpts != NULL &&
	   fg_rcptlist_check(cfg->valid_rcpts, "bob@ok.test") == 0,
	   "the snapshot carries the list");
	fg_config_release(cfg);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
