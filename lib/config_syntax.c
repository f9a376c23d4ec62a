/*
 * config_syntax.c - the likely cause of a libconfig syntax error.
 *
 * libconfig says no more than "syntax error" and a line.  The mistakes
 * that cost an operator time are few and visible on that line: a value
 * written without its double quotes (user = floodgate; max_delay = 8s;
 * networks = [ 192.0.2.0/24 ];), a string in single quotes, a boolean
 * spelt yes or on.  A small scanner walks the line as libconfig would
 * (names, '=' or ':', values, lists, groups, double-quoted strings,
 * comments), and the first value that is neither a string, a number, a
 * boolean nor the opening of a group, array or list is the one named.
 * What the scanner does not recognise gives no hint: a wrong hint is
 * worse than none.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "log.h"

/* Characters that end a bare value on the line. */
static bool
ends_value(char ch)
{
	return ch == '\0' || isspace((unsigned char)ch) || strchr(";,])}", ch);
}

/* A libconfig number: decimal or hex integer (L suffix allowed), or a
 * float with an optional exponent. */
static bool
is_number(const char *t, size_t n)
{
	size_t i = 0, digits = 0;
	bool dot = false;

	if (n > 0 && (t[0] == '+' || t[0] == '-'))
		i++;
	if (n - i > 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
		for (i += 2; i < n && isxdigit((unsigned char)t[i]); i++)
			digits++;
	} else {
		for (; i < n && (isdigit((unsigned char)t[i]) || t[i] == '.');
		     i++) {
			if (t[i] == '.') {
				if (dot)
					return false;
				dot = true;
			} else {
				digits++;
			}
		}
		if (digits > 0 && i < n && (t[i] == 'e' || t[i] == 'E')) {
			i++;
			if (i < n && (t[i] == '+' || t[i] == '-'))
				i++;
			if (i == n || !isdigit((unsigned char)t[i]))
				return false;
			while (i < n && isdigit((unsigned char)t[i]))
				i++;
			return i == n;
		}
	}
	if (digits == 0)
		return false;
	if (i < n && (t[i] == 'L' || t[i] == 'l'))
		i++;
	if (i < n && (t[i] == 'L' || t[i] == 'l'))
		i++;
	return i == n;
}

static bool
word_is(const char *t, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(t, w, n) == 0;
}

/* "8s", "10m", "250ms": a duration. */
static bool
is_duration(const char *t, size_t n)
{
	size_t i = 0;

	while (i < n && isdigit((unsigned char)t[i]))
		i++;
	if (i == 0 || i == n)
		return false;
	return word_is(t + i, n - i, "ms") || word_is(t + i, n - i, "s") ||
	       word_is(t + i, n - i, "m") || word_is(t + i, n - i, "h") ||
	       word_is(t + i, n - i, "d") || word_is(t + i, n - i, "w");
}

/* The reason for the bare value t[0..n) of key. */
static void
explain(const char *key, const char *t, size_t n, bool in_list, char *hint,
        size_t size)
{
	char v[128], raw[128];
	const char *what;

	snprintf(raw, sizeof(raw), "%.*s", (int)(n < 100 ? n : 100), t);
	fg_sanitize(v, sizeof(v), raw);
	if (word_is(t, n, "yes") || word_is(t, n, "no") ||
	    word_is(t, n, "on") || word_is(t, n, "off")) {
		snprintf(hint, size, "%s is not a value: booleans are true "
		         "or false, e.g. %s = %s;", v, key,
		         word_is(t, n, "yes") || word_is(t, n, "on") ? "true"
		                                                     : "false");
		return;
	}
	if (is_duration(t, n))
		what = "durations are strings, in double quotes";
	else if (isdigit((unsigned char)t[0]) || t[0] == ':')
		what = "addresses and networks are strings, in double quotes";
	else
		what = "strings must be in double quotes";
	if (in_list)
		snprintf(hint, size, "%s is not quoted: %s, e.g. \"%s\"", v,
		         what, v);
	else
		snprintf(hint, size, "%s is not quoted: %s, e.g. %s = \"%s\";",
		         v, what, key, v);
}

bool
fg_config_syntax_hint(const char *line, char *key, size_t keysize,
                      char *hint, size_t hintsize)
{
	char stack[32];       /* open brackets: '[', '(', '{' */
	size_t depth = 0;
	bool value = false;   /* a value may start here */
	const char *p = line;

	snprintf(key, keysize, "%s", "");
	while (*p != '\0' && *p != '\n') {
		char ch = *p;

		if (isspace((unsigned char)ch)) {
			p++;
		} else if (ch == '#' || (ch == '/' && p[1] == '/')) {
			break;
		} else if (ch == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			if (e == NULL)
				break;
			p = e + 2;
		} else if (ch == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '"')
				p++;
			value = false;
		} else if (ch == '\'' && value) {
			const char *e = strchr(p + 1, '\'');
			char v[128], raw[128];
			size_t n = e != NULL ? (size_t)(e - p - 1) : strlen(p + 1);

			snprintf(raw, sizeof(raw), "%.*s",
			         (int)(n < 100 ? n : 100), p + 1);
			fg_sanitize(v, sizeof(v), raw);
			snprintf(hint, hintsize, "strings must be in double "
			         "quotes, not single: \"%s\"", v);
			return key[0] != '\0';
		} else if (ch == '=' || ch == ':') {
			value = true;
			p++;
		} else if (ch == '[' || ch == '(' || ch == '{') {
			if (depth < sizeof(stack))
				stack[depth] = ch;
			depth++;
			value = ch != '{';
			p++;
		} else if (ch == ']' || ch == ')' || ch == '}' || ch == ';') {
			if (ch != ';' && depth > 0)
				depth--;
			value = false;
			p++;
		} else if (ch == ',') {
			value = depth > 0 && depth <= sizeof(stack) &&
			        stack[depth - 1] != '{';
			p++;
		} else if (value) {
			const char *t = p;
			size_t n;
			bool in_list = depth > 0 && depth <= sizeof(stack) &&
			               stack[depth - 1] != '{';

			while (!ends_value(*p))
				p++;
			n = (size_t)(p - t);
			if (is_number(t, n) || word_is(t, n, "true") ||
			    word_is(t, n, "false")) {
				value = false;
				continue;
			}
			if (key[0] == '\0')
				return false;
			explain(key, t, n, in_list, hint, hintsize);
			return true;
		} else if (isalpha((unsigned char)ch) || ch == '*') {
			const char *t = p;

			while (isalnum((unsigned char)*p) || *p == '_' ||
			       *p == '-' || *p == '*')
				p++;
			snprintf(key, keysize, "%.*s", (int)(p - t), t);
		} else {
			return false;
		}
	}
	return false;
}
