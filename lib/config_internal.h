/*
 * config_internal.h - what the parts of the configuration parser share:
 * the diagnostic context, the field table types and the generic group
 * walker.  Private to lib/config*.c.
 */
#ifndef FG_CONFIG_INTERNAL_H
#define FG_CONFIG_INTERNAL_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define MS_S INT64_C(1000)
#define MS_D (INT64_C(86400) * 1000)

struct ctx {
	const char *file;
	fg_config_diag_fn *diag;
	void *arg;
	int errors;
	bool nomem;
	/* Top-level settings reported in error: the checks across
	 * settings leave them out (their values are not set). */
	char failed[32][40];
	size_t nfailed;
};

/* Whether an error was reported for setting key. */
bool fg_cfg_failed(const struct ctx *c, const char *key);

void fg_cfg_report(struct ctx *c, bool warning, int line, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define CERR(c, line, key, ...) fg_cfg_report((c), false, (line), (key), __VA_ARGS__)
#define CWARN(c, line, key, ...) fg_cfg_report((c), true, (line), (key), __VA_ARGS__)

char *fg_cfg_strdup(struct ctx *c, const char *s);
void *fg_cfg_calloc(struct ctx *c, size_t n, size_t size);

enum ftype {
	F_STRING,   /* char * */
	F_BOOL,     /* bool */
	F_INT,      /* int64_t, bounds */
	F_UINT,     /* unsigned, bounds */
	F_DURATION, /* int64_t ms, bounds in ms */
	F_SIZE,     /* int64_t bytes, "64M" or a number; bounds in bytes */
	F_MODE,     /* unsigned, octal text */
	F_ENUM,     /* int (enum), names */
	F_RATIO,    /* double 0..1 */
	F_REPLY,    /* struct fg_reply */
	F_SPECIAL,  /* handled by the group's own code */
};

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	const char *def;        /* default as config text; NULL: none/zero */
	int64_t min, max;
	const char *const *names;
	/* extra check; returns NULL or a reason */
	const char *(*check)(const char *text);
};

typedef void special_fn(struct ctx *c, const struct field *f,
                        config_setting_t *s, const char *key, void *base);

/* Validators for string fields: NULL, or the reason the value is bad. */
const char *fg_cfg_check_socket(const char *v);
const char *fg_cfg_check_abs_path(const char *v);
const char *fg_cfg_check_abs_path_or_empty(const char *v);
const char *fg_cfg_check_name(const char *v);
const char *fg_cfg_check_user(const char *v);

/* "a string", "an integer", ... for messages. */
const char *fg_cfg_type_name(int t);
int fg_cfg_parse_reply(struct ctx *c, config_setting_t *s, const char *key,
                struct fg_reply *r);
void fg_cfg_free_reply(struct fg_reply *r);
/* Converts one value (from the file, or a default) into base + f->off. */
void fg_cfg_set_field(struct ctx *c, const struct field *f, config_setting_t *s,
               const char *key, void *base);
void fg_cfg_set_default(struct ctx *c, const struct field *f, const char *key,
                 void *base);
/* Walks group g against a table: unknown names are errors, known ones
 * converted, the rest defaulted; seen[i] tells which row was given. */
void fg_cfg_parse_group(struct ctx *c, config_setting_t *g, const char *prefix,
                 const struct field *table, size_t n, void *base, bool *seen,
                 special_fn *special);
/* Calls fn for a string or each string of an array/list; returns the
 * number of elements. */
int fg_cfg_each_string(struct ctx *c, config_setting_t *s, const char *key,
                void (*fn)(struct ctx *, const char *, int, const char *,
                           void *),
                void *arg);

/* config_syntax.c: the likely cause of a syntax error on line (one line
 * of the file, read up to its newline).  True, with the setting in key
 * and the reason in hint, when it can tell; false otherwise. */
bool fg_config_syntax_hint(const char *line, char *key, size_t keysize,
                           char *hint, size_t hintsize);

/* config_rules.c */
extern const char *const fg_cfg_action_names[];
void fg_cfg_parse_rules(struct ctx *c, struct fg_config *cfg, config_setting_t *s);
void fg_cfg_free_rules(struct fg_config *cfg);

/* config_shared.c: the shared group, parsed before the rules (a rule's
 * shared setting defaults to whether the group is there). */
void fg_cfg_parse_shared(struct ctx *c, struct fg_config *cfg, config_setting_t *s);
void fg_cfg_free_shared(struct fg_config *cfg);

#endif
