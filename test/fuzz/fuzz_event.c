/*-------------------------------------------------------------------------
 *
 * fuzz_event.c
 *	  libFuzzer target for the event parser and the field mapping
 *	  (extension/event.c), built with AddressSanitizer and
 *	  UndefinedBehaviorSanitizer: `make -C test fuzz`.
 *
 * An input is a message value, parsed under the default mapping and under
 * the README's nested one, as the SQL path delivers it (no key, timestamp or
 * headers).  An input that starts with '@' first describes a mapping and
 * the Kafka side of the message, one line each, up to an empty line; the
 * rest is the value:
 *
 *	 @default				the default mapping's fields (also: nested)
 *	 f SPEC NAME PATH		a field in the next slot; SPEC is six letters:
 *							source v k t h (value, key, timestamp, header),
 *							type T I N M (text, integer, number, time),
 *							r or - (required), role - e u l s (event time,
 *							user id, latency, status), time format a r S M U
 *							(auto, rfc3339, epoch s/ms/us), latency unit m u s
 *							(ms, us, s); '-' for no role, format or unit
 *	 _						a free slot (a field deleted)
 *	 k BYTES				the message key (\xHH and \\ escapes)
 *	 t MS					the message timestamp
 *	 h NAME=BYTES, h NAME	a header, with a value or without
 *
 * Fields that trafficagg.fields' constraints would refuse are left out, and
 * an input without an event time field is skipped, so every mapping tried
 * is one a user can set up.
 *
 * Each parse is done twice, by the fast scanner (use_fast = true) and by
 * jansson alone (use_fast = false), and the two results must be identical:
 * the outcome, the detail text and every extracted field.  Each result must
 * also keep the promises the parser makes whatever the path:
 *
 *	- the limit: the value is parsed with trafficagg.max_event_bytes equal to
 *	  its length (not too large), and once more with one byte less
 *	  (too_large);
 *	- UTF-8, against a validator of our own (RFC 3629): an accepted message
 *	  is valid UTF-8 throughout, invalid_utf8 is only said of a message (or a
 *	  key or header a field reads) that is not, and a value that is not is
 *	  never accepted;
 *	- the mapping, against a lookup of our own in jansson's document: an
 *	  accepted event has every required field, each text or integer field is
 *	  the value at its path (or the key, the header), the roles (user id,
 *	  status, latency, an integer event time) come from their fields; a
 *	  rejection that names a field fits it (missing, of another type);
 *	- an accepted event's values are valid UTF-8 without NUL, the status code and latency in range, the time
 *	  within years 1 to 9999; a rejection always says why.
 *
 * Any difference or broken promise prints both results and aborts, so
 * libFuzzer saves the input.  The parser's API is used in one function,
 * parse_into(); when it changes, that function and the Result it fills are
 * what to adapt.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "../../extension/trafficagg.h"
#include "../../extension/event.h"
#include "../nested_mapping.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

/* the settings event.c reads (trafficagg.c defines them in the server) */
int			ta_max_event_bytes = 65536;

/* Assert() in event.c, built with -DUSE_ASSERT_CHECKING: abort, libFuzzer keeps the input */
#if PG_VERSION_NUM >= 160000
void
ExceptionalCondition(const char *conditionName, const char *fileName, int lineNumber)
{
	fprintf(stderr, "TRAP: failed Assert(\"%s\"), file \"%s\", line %d\n",
			conditionName, fileName, lineNumber);
	abort();
}
#else
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fprintf(stderr, "TRAP: %s(\"%s\"), file \"%s\", line %d\n",
			errorType, conditionName, fileName, lineNumber);
	abort();
}
#endif

/* ---------------------------------------------------------------------
 * The input: a mapping, the Kafka side of a message, its value
 * ---------------------------------------------------------------------
 */
#define FUZZ_MAX_HEADERS	16
#define FUZZ_MAX_BYTES		4096	/* of a key or a header value */

typedef struct Input
{
	TaMapping	map;
	int			next_slot;
	TaMessage	msg;
	char		key[FUZZ_MAX_BYTES];
	TaHeader	headers[FUZZ_MAX_HEADERS];
	char		header_names[FUZZ_MAX_HEADERS][TA_MAX_PATH_LEN];
	char		header_values[FUZZ_MAX_HEADERS][FUZZ_MAX_BYTES];
} Input;

static Input input;

static int
hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The bytes of s (len), with \xHH and \\ decoded, into out; their length. */
static size_t
unescape(const char *s, size_t len, char *out, size_t cap)
{
	size_t		n = 0;

	for (size_t i = 0; i < len && n < cap; i++)
	{
		if (s[i] == '\\' && i + 1 < len && s[i + 1] == '\\')
			out[n++] = s[++i];
		else if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x' &&
				 hex_digit(s[i + 2]) >= 0 && hex_digit(s[i + 3]) >= 0)
		{
			out[n++] = (char) (hex_digit(s[i + 2]) * 16 + hex_digit(s[i + 3]));
			i += 3;
		}
		else
			out[n++] = s[i];
	}
	return n;
}

static bool
valid_name(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || *s == '_') || strlen(s) > 48)
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* ^[^.]+(\.[^.]+){0,7}$ */
static bool
valid_value_path(const char *p)
{
	int			segments = 1;

	if (*p == '\0' || *p == '.')
		return false;
	for (; *p; p++)
		if (*p == '.')
		{
			if (p[1] == '\0' || p[1] == '.')
				return false;
			segments++;
		}
	return segments <= TA_MAX_PATH_DEPTH;
}

/*
 * Put d in the next slot if trafficagg.fields would take it (its CHECK
 * constraints, the unique name and role); otherwise leave it out.
 */
static void
add_checked(Input *in, const TaFieldDef *d)
{
	TaFieldDef *slot;

	if (in->next_slot >= TA_MAX_FIELDS || !valid_name(d->name) ||
		(d->source == TA_FROM_VALUE && !valid_value_path(d->path)) ||
		(d->source == TA_FROM_HEADER && d->path[0] == '\0') ||
		(d->source == TA_FROM_TIMESTAMP && d->type != TA_TYPE_TIME) ||
		((d->type == TA_TYPE_TIME) != (d->role == TA_ROLE_EVENT_TIME)) ||
		(d->role == TA_ROLE_USER_ID && d->type != TA_TYPE_TEXT && d->type != TA_TYPE_INTEGER) ||
		(d->role == TA_ROLE_LATENCY && d->type != TA_TYPE_NUMBER && d->type != TA_TYPE_INTEGER) ||
		(d->role == TA_ROLE_STATUS && d->type != TA_TYPE_INTEGER))
		return;
	for (int s = 0; s < in->next_slot; s++)
	{
		const TaFieldDef *o = &in->map.fields[s];

		if (!o->in_use)
			continue;
		if (strcmp(o->name, d->name) == 0 || (d->role != TA_ROLE_NONE && o->role == d->role))
			return;
	}
	slot = &in->map.fields[in->next_slot++];
	*slot = *d;
	slot->in_use = true;
	/* what catalog.c gives a field without a time format or a latency unit */
	if (slot->type != TA_TYPE_TIME || slot->source == TA_FROM_TIMESTAMP)
		slot->format = TA_TIME_AUTO;
	if (slot->role != TA_ROLE_LATENCY)
		slot->unit_us = 1000;
	if (slot->source == TA_FROM_KEY || slot->source == TA_FROM_TIMESTAMP)
		slot->path[0] = '\0';
}

static void
add_mapping(Input *in, const TaMapping *m)
{
	for (int s = 0; s < TA_MAX_FIELDS; s++)
		if (m->fields[s].in_use)
			add_checked(in, &m->fields[s]);
}

/* "f SPEC NAME PATH" */
static void
add_field_line(Input *in, const char *line, size_t len)
{
	static const char sources[] = "vkth",
				types[] = "TINM",
				roles[] = "-euls",
				formats[] = "arSMU-",
				units[] = "mus-";
	static const int64 unit_us[] = {1000, 1, 1000000, 1000};
	TaFieldDef	d;
	const char *name,
			   *path,
			   *end = line + len,
			   *c;

	memset(&d, 0, sizeof(d));
	if (len < 10 || line[1] != ' ' || line[8] != ' ')
		return;
	if (!(c = memchr(sources, line[2], 4)))
		return;
	d.source = (TaFieldSource) (c - sources);
	if (!(c = memchr(types, line[3], 4)))
		return;
	d.type = (TaFieldType) (c - types);
	d.required = line[4] == 'r';
	if (!(c = memchr(roles, line[5], 5)))
		return;
	d.role = (TaFieldRole) (c - roles);
	if (!(c = memchr(formats, line[6], 6)))
		return;
	d.format = (TaTimeFormat) ((c - formats) % 5);	/* '-': auto */
	if (!(c = memchr(units, line[7], 4)))
		return;
	d.unit_us = unit_us[c - units];

	name = line + 9;
	path = memchr(name, ' ', end - name);
	if (path == NULL)
		path = end;
	if (path - name >= NAMEDATALEN || end - path >= TA_MAX_PATH_LEN + 1)
		return;
	memcpy(d.name, name, path - name);
	if (path < end)
		path++;
	if (memchr(path, '\0', end - path))
		return;					/* text holds no NUL */
	memcpy(d.path, path, end - path);
	add_checked(in, &d);
}

/*
 * Read the input into `input`; the value is what follows the control
 * section.  false: no mapping trafficagg would take.
 */
static bool
read_control(const uint8_t *data, size_t len, const uint8_t **value, size_t *value_len)
{
	static uint32 version = 0;
	const char *p = (const char *) data + 1,
			   *end = (const char *) data + len;

	memset(&input.map, 0, sizeof(input.map));
	input.map.version = ++version;
	input.next_slot = 0;
	memset(&input.msg, 0, sizeof(input.msg));
	input.msg.timestamp_ms = TA_NO_TIME;
	input.msg.headers = input.headers;

	*value = (const uint8_t *) end;
	*value_len = 0;
	while (p < end)
	{
		const char *nl = memchr(p, '\n', end - p);
		size_t		n = (nl ? nl : end) - p;

		if (n == 0)
		{
			*value = (const uint8_t *) p + 1;
			*value_len = end - p - 1;
			break;
		}
		if (n == 7 && memcmp(p, "default", 7) == 0)
			add_mapping(&input, mapping_default());
		else if (n == 6 && memcmp(p, "nested", 6) == 0)
			add_mapping(&input, nested_mapping());
		else if (n == 1 && *p == '_')
			input.next_slot = Min(input.next_slot + 1, TA_MAX_FIELDS);
		else if (p[0] == 'f')
			add_field_line(&input, p, n);
		else if (n >= 2 && p[0] == 'k' && p[1] == ' ')
		{
			input.msg.key = input.key;
			input.msg.key_len = unescape(p + 2, n - 2, input.key, sizeof(input.key));
		}
		else if (n >= 3 && p[0] == 't' && p[1] == ' ')
		{
			char		buf[32];

			snprintf(buf, sizeof(buf), "%.*s", (int) Min(n - 2, 31), p + 2);
			input.msg.timestamp_ms = strtoll(buf, NULL, 10);
		}
		else if (n >= 3 && p[0] == 'h' && p[1] == ' ' && input.msg.nheaders < FUZZ_MAX_HEADERS)
		{
			int			h = input.msg.nheaders;
			const char *eq = memchr(p + 2, '=', n - 2);
			size_t		namelen = (eq ? eq : p + n) - (p + 2);
			TaHeader   *hd = &input.headers[h];

			if (namelen < TA_MAX_PATH_LEN && !memchr(p + 2, '\0', namelen))
			{
				memcpy(input.header_names[h], p + 2, namelen);
				input.header_names[h][namelen] = '\0';
				hd->name = input.header_names[h];
				hd->value = NULL;
				hd->len = 0;
				if (eq)
				{
					hd->value = input.header_values[h];
					hd->len = unescape(eq + 1, p + n - eq - 1, input.header_values[h],
									   sizeof(input.header_values[h]));
				}
				input.msg.nheaders++;
			}
		}
		p += n + 1;
	}
	for (int s = 0; s < TA_MAX_FIELDS; s++)
		if (input.map.fields[s].in_use && input.map.fields[s].role == TA_ROLE_EVENT_TIME)
			return true;
	return false;				/* trafficagg.fields needs one */
}

/* ---------------------------------------------------------------------
 * One parse, copied out of the parser's memory (which the next call
 * reuses).  Fields are compared by slot, whatever they mean.
 * ---------------------------------------------------------------------
 */
typedef struct Result
{
	TaOutcome	outcome;
	char		detail[TA_DETAIL_LEN];
	int64		ts_ms;
	bool		has_status;
	int32		status_code;
	bool		has_latency;
	int64		latency_us;
	int			user_id_slot;	/* the field user_id points to, -1: none */
	bool		has_num[TA_MAX_FIELDS];	/* numeric fields as metrics */
	int64		num_micro[TA_MAX_FIELDS];
	const char *value[TA_MAX_FIELDS];	/* into strings; NULL when absent */
	size_t		value_len[TA_MAX_FIELDS];
	char	   *strings;		/* grown as needed, kept across inputs */
	size_t		strings_cap;
} Result;

static Result fast,
			reference,
			over_limit;

static const uint8_t *cur_data;
static size_t cur_len;
static const char *cur_mapping;

static void pg_attribute_noreturn() fail(const char *what);

#define CHECK(cond, what) do { if (!(cond)) fail(what); } while (0)

/* The one call of the parser: parse msg under map, with the given limit, into r. */
static void
parse_into(Result *r, const TaMapping *map, const TaMessage *msg, int max_event_bytes,
		   bool use_fast)
{
	TaEvent		ev;
	size_t		need = 0,
				used = 0;

	ta_max_event_bytes = max_event_bytes;
	memset(r->detail, 0x7f, sizeof(r->detail));	/* must come back terminated */
	r->outcome = event_parse_with(map, msg, &ev, r->detail, sizeof(r->detail), use_fast);
	r->ts_ms = 0;
	r->has_status = r->has_latency = false;
	r->status_code = 0;
	r->latency_us = 0;
	r->user_id_slot = -1;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
	{
		r->value[f] = NULL;
		r->has_num[f] = false;
		r->num_micro[f] = 0;
	}
	if (r->outcome != TA_ACCEPTED)
		return;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (ev.has_num[f])
		{
			r->has_num[f] = true;
			r->num_micro[f] = ev.num_micro[f];
		}
	r->ts_ms = ev.ts_ms;
	r->has_status = ev.has_status;
	r->status_code = ev.status_code;
	r->has_latency = ev.has_latency;
	r->latency_us = ev.latency_us;

	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (ev.field[f])
		{
			/* the text is field_len bytes, then the NUL, with no NUL inside */
			CHECK(ev.field[f][ev.field_len[f]] == '\0' &&
				  strlen(ev.field[f]) == ev.field_len[f], "a field's length is not its text's");
			need += ev.field_len[f] + 1;
			if (ev.user_id == ev.field[f])
				r->user_id_slot = f;
		}
	CHECK(ev.user_id == NULL || (r->user_id_slot >= 0 &&
								 ev.user_id_len == ev.field_len[r->user_id_slot]),
		  "user_id is not one of the fields");
	if (need > r->strings_cap)
	{
		r->strings_cap = need * 2;
		r->strings = realloc(r->strings, r->strings_cap);
		if (r->strings == NULL)
			abort();
	}
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (ev.field[f])
		{
			memcpy(r->strings + used, ev.field[f], ev.field_len[f] + 1);
			r->value[f] = r->strings + used;
			r->value_len[f] = ev.field_len[f];
			used += ev.field_len[f] + 1;
		}
	event_free(&ev);
}

/* ------------------------------------------------------------------ */

static void
print_result(const char *name, const Result *r)
{
	fprintf(stderr, "%s: %s (%.*s)", name, outcome_name(r->outcome),
			(int) sizeof(r->detail), r->detail);
	if (r->outcome == TA_ACCEPTED)
	{
		fprintf(stderr, " ts_ms=%lld", (long long) r->ts_ms);
		if (r->has_status)
			fprintf(stderr, " status=%d", r->status_code);
		if (r->has_latency)
			fprintf(stderr, " latency_us=%lld", (long long) r->latency_us);
		if (r->user_id_slot >= 0)
			fprintf(stderr, " user_id=[%d]", r->user_id_slot);
		for (int f = 0; f < TA_MAX_FIELDS; f++)
			if (r->value[f])
				fprintf(stderr, " [%d]=\"%s\"", f, r->value[f]);
		for (int f = 0; f < TA_MAX_FIELDS; f++)
			if (r->has_num[f])
				fprintf(stderr, " [%d]=%lld/1e6", f, (long long) r->num_micro[f]);
	}
	fputc('\n', stderr);
}

static void
fail(const char *what)
{
	fprintf(stderr, "\n==== fuzz_event: %s (%s mapping)\ninput (%zu bytes): ",
			what, cur_mapping, cur_len);
	for (size_t i = 0; i < cur_len && i < 4096; i++)
	{
		uint8_t		c = cur_data[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fputc('\n', stderr);
	print_result("fast     ", &fast);
	print_result("reference", &reference);
	abort();
}

/*
 * Valid UTF-8 (RFC 3629): shortest form, no surrogates, at most U+10FFFF.
 * Written from the RFC's table, independently of jansson's and event.c's
 * checkers.
 */
static bool
valid_utf8(const uint8_t *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint8_t		c = s[i];
		uint8_t		lo = 0x80,
					hi = 0xbf;	/* range of the second byte */
		int			n;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
		{
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;		/* no overlong */
			else if (c == 0xed)
				hi = 0x9f;		/* no surrogate */
		}
		else if (c >= 0xf0 && c <= 0xf4)
		{
			n = 3;
			if (c == 0xf0)
				lo = 0x90;		/* no overlong */
			else if (c == 0xf4)
				hi = 0x8f;		/* at most U+10FFFF */
		}
		else
			return false;
		if (len - i <= (size_t) n)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (int k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += n + 1;
	}
	return true;
}

static bool
same_result(const Result *a, const Result *b)
{
	if (a->outcome != b->outcome || strcmp(a->detail, b->detail) != 0)
		return false;
	if (a->outcome != TA_ACCEPTED)
		return true;
	if (a->ts_ms != b->ts_ms || a->has_status != b->has_status ||
		a->status_code != b->status_code || a->has_latency != b->has_latency ||
		a->latency_us != b->latency_us || a->user_id_slot != b->user_id_slot)
		return false;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (a->has_num[f] != b->has_num[f] || a->num_micro[f] != b->num_micro[f])
			return false;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if ((a->value[f] == NULL) != (b->value[f] == NULL) ||
			(a->value[f] && (a->value_len[f] != b->value_len[f] ||
							 memcmp(a->value[f], b->value[f], a->value_len[f]) != 0)))
			return false;
	return true;
}

/* ---------------------------------------------------------------------
 * The mapping's oracle: each field's raw value looked up without the
 * parser's plan, by walking jansson's document along the path.
 * ---------------------------------------------------------------------
 */
typedef enum
{
	RAW_ABSENT,					/* missing, or null */
	RAW_STRING,
	RAW_INTEGER,
	RAW_REAL,
	RAW_OTHER
} RawKind;

typedef struct Raw
{
	RawKind		kind;
	const char *s;
	size_t		len;
	long long	i;
	double		d;				/* RAW_REAL */
} Raw;

static Raw
raw_value(const TaFieldDef *d, json_t *doc, const TaMessage *msg)
{
	Raw			r = {RAW_ABSENT, NULL, 0, 0, 0};

	switch (d->source)
	{
		case TA_FROM_VALUE:
			{
				json_t	   *v = doc;
				const char *seg = d->path;

				for (;;)
				{
					const char *dot = strchr(seg, '.');
					size_t		n = dot ? (size_t) (dot - seg) : strlen(seg);

					if (!json_is_object(v) || (v = json_object_getn(v, seg, n)) == NULL)
						return r;
					if (!dot)
						break;
					seg = dot + 1;
				}
				if (json_is_string(v))
				{
					r.kind = RAW_STRING;
					r.s = json_string_value(v);
					r.len = json_string_length(v);
				}
				else if (json_is_integer(v))
				{
					r.kind = RAW_INTEGER;
					r.i = json_integer_value(v);
				}
				else if (json_is_real(v))
				{
					r.kind = RAW_REAL;
					r.d = json_real_value(v);
				}
				else if (!json_is_null(v))
					r.kind = RAW_OTHER;
				return r;
			}
		case TA_FROM_KEY:
			if (msg->key)
				r.kind = RAW_STRING, r.s = msg->key, r.len = msg->key_len;
			return r;
		case TA_FROM_TIMESTAMP:
			if (msg->timestamp_ms != TA_NO_TIME)
				r.kind = RAW_INTEGER, r.i = msg->timestamp_ms;
			return r;
		case TA_FROM_HEADER:
			/* a header given more than once: the last one counts */
			for (int h = 0; h < msg->nheaders; h++)
				if (strcmp(msg->headers[h].name, d->path) == 0)
				{
					r.kind = msg->headers[h].value ? RAW_STRING : RAW_ABSENT;
					r.s = msg->headers[h].value;
					r.len = msg->headers[h].len;
				}
			return r;
	}
	return r;
}

/* The integer a key or header holds as text (-?[0-9]{1,18}), into *i. */
static bool
integer_text(const char *s, size_t len, long long *i)
{
	char		buf[32];
	size_t		k = len > 0 && s[0] == '-';

	if (len > 18 || k == len)
		return false;
	for (; k < len; k++)
		if (s[k] < '0' || s[k] > '9')
			return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*i = strtoll(buf, NULL, 10);
	return true;
}

/* What the detail calls a field: its path for the value, else its name. */
static const char *
what(const TaFieldDef *d)
{
	return d->source == TA_FROM_VALUE ? d->path : d->name;
}

/*
 * A rejection that names a field (field "X" ...) must be true of that
 * field's raw value: missing, of another type, too long, or at least there.
 */
static bool
rejection_fits(const Result *r, const TaFieldDef *d, const Raw *raw)
{
	char		prefix[TA_MAX_PATH_LEN + 16];
	const char *rest;
	bool		needed = d->required || d->role == TA_ROLE_EVENT_TIME;

	snprintf(prefix, sizeof(prefix), "field \"%s\" ", what(d));
	if (strncmp(r->detail, prefix, strlen(prefix)) != 0)
		return false;
	rest = r->detail + strlen(prefix);
	switch (r->outcome)
	{
		case TA_REJ_MISSING_FIELD:
			return needed && raw->kind == RAW_ABSENT && strcmp(rest, "is missing") == 0;
		case TA_REJ_VALUE_TOO_LONG:
			return false;		/* no longer given: values have any length */
		case TA_REJ_WRONG_TYPE:
			if (raw->kind == RAW_ABSENT)
				return false;
			if (strcmp(rest, "must be a string") == 0)
				return raw->kind != RAW_STRING;
			if (d->source == TA_FROM_VALUE && strcmp(rest, "must be an integer") == 0)
				return raw->kind != RAW_INTEGER;
			if (d->source == TA_FROM_VALUE && strcmp(rest, "must be a number") == 0)
				return raw->kind != RAW_INTEGER && raw->kind != RAW_REAL;
			return true;
		default:
			return true;
	}
}

/*
 * An integer or number field, as a metric: in millionths while its
 * magnitude is at most TA_MAX_METRIC_VALUE, else none (a number field
 * beyond it is rejected unless it is the latency).
 */
static void
check_metric(const Result *r, int s, const TaFieldDef *d, const Raw *raw)
{
	bool		integer;
	long long	i = raw->i;
	double		v = raw->kind == RAW_REAL ? raw->d : (double) raw->i;
	char		buf[64];

	if (d->type != TA_TYPE_INTEGER && d->type != TA_TYPE_NUMBER)
	{
		CHECK(!r->has_num[s], "a metric from a text or time field");
		return;
	}
	if (raw->kind == RAW_ABSENT)
	{
		CHECK(!r->has_num[s], "a metric from a missing field");
		return;
	}
	integer = raw->kind == RAW_INTEGER;
	if (raw->kind == RAW_STRING)
	{
		/* a key or header written as a number */
		integer = integer_text(raw->s, raw->len, &i);
		snprintf(buf, sizeof(buf), "%.*s", (int) Min(raw->len, sizeof(buf) - 1), raw->s);
		v = integer ? (double) i : strtod(buf, NULL);
	}
	if (!(v >= -(double) TA_MAX_METRIC_VALUE && v <= (double) TA_MAX_METRIC_VALUE))
	{
		CHECK(!r->has_num[s], "a metric beyond TA_MAX_METRIC_VALUE");
		CHECK(d->type == TA_TYPE_INTEGER || d->role == TA_ROLE_LATENCY,
			  "a number field beyond TA_MAX_METRIC_VALUE accepted");
		return;
	}
	CHECK(r->has_num[s], "no metric from a numeric field");
	if (integer)
		CHECK(r->num_micro[s] == i * 1000000, "the metric is not its integer in millionths");
	else
		CHECK(r->num_micro[s] == llround(v * 1e6), "the metric is not its number in millionths");
}

static void
check_mapping(const Result *r, const TaMapping *map, const TaMessage *msg)
{
	json_t	   *doc;
	bool		named = false;

	if (r->outcome != TA_ACCEPTED && r->outcome != TA_REJ_MISSING_FIELD &&
		r->outcome != TA_REJ_WRONG_TYPE && r->outcome != TA_REJ_VALUE_TOO_LONG)
		return;
	doc = json_loadb(msg->data, msg->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	CHECK(doc != NULL && json_is_object(doc), "an object accepted that jansson refuses");

	for (int s = 0; s < TA_MAX_FIELDS; s++)
	{
		const TaFieldDef *d = &map->fields[s];
		Raw			raw;
		bool		needed;

		if (!d->in_use)
			continue;
		raw = raw_value(d, doc, msg);
		needed = d->required || d->role == TA_ROLE_EVENT_TIME;
		if (r->outcome != TA_ACCEPTED)
		{
			named |= rejection_fits(r, d, &raw);
			continue;
		}
		CHECK(!(needed && raw.kind == RAW_ABSENT), "accepted without a required field");
		if (d->type == TA_TYPE_TEXT)
		{
			CHECK((raw.kind == RAW_ABSENT) == (r->value[s] == NULL),
				  "a text field present or not as its path is not");
			if (r->value[s])
				CHECK(raw.kind == RAW_STRING && raw.len == r->value_len[s] &&
					  memcmp(raw.s, r->value[s], raw.len) == 0,
					  "a text field is not the string at its path");
		}
		else if (d->type == TA_TYPE_INTEGER)
		{
			long long	i = raw.i;
			char		text[24];

			CHECK((raw.kind == RAW_ABSENT) == (r->value[s] == NULL),
				  "an integer field present or not as its path is not");
			if (r->value[s])
			{
				CHECK(raw.kind == RAW_INTEGER ||
					  (raw.kind == RAW_STRING && d->source != TA_FROM_VALUE &&
					   integer_text(raw.s, raw.len, &i)),
					  "an integer field from something else than an integer");
				snprintf(text, sizeof(text), "%lld", i);
				CHECK(strcmp(text, r->value[s]) == 0, "an integer field's text");
				if (d->role == TA_ROLE_STATUS)
					CHECK(r->has_status && r->status_code == i, "the status is not its field");
				if (d->role == TA_ROLE_LATENCY)
					CHECK(r->has_latency && r->latency_us == i * d->unit_us,
						  "the latency is not its field");
			}
		}
		else
			CHECK(r->value[s] == NULL, "a number or time field has text");
		if (d->type == TA_TYPE_NUMBER && raw.kind != RAW_ABSENT)
			CHECK(raw.kind == RAW_INTEGER || raw.kind == RAW_REAL ||
				  (raw.kind == RAW_STRING && d->source != TA_FROM_VALUE),
				  "a number field from something else than a number");
		check_metric(r, s, d, &raw);
		if (d->role == TA_ROLE_USER_ID)
			CHECK(r->user_id_slot == (r->value[s] ? s : -1), "user_id is not its field");
		if (d->role == TA_ROLE_STATUS)
			CHECK(r->has_status == (raw.kind != RAW_ABSENT), "has_status");
		if (d->role == TA_ROLE_LATENCY)
			CHECK(r->has_latency == (raw.kind != RAW_ABSENT), "has_latency");
		if (d->role == TA_ROLE_EVENT_TIME && raw.kind == RAW_INTEGER)
		{
			int64		ms = raw.i;

			if (d->format == TA_TIME_EPOCH_S)
				ms = raw.i * 1000;	/* accepted: in range, no overflow */
			else if (d->format == TA_TIME_EPOCH_US)
				ms = raw.i >= 0 ? raw.i / 1000 : -((-raw.i + 999) / 1000);
			CHECK(d->format != TA_TIME_RFC3339, "an integer accepted as RFC 3339");
			CHECK(r->ts_ms == ms, "the event time is not its field");
		}
	}
	if (r->outcome != TA_ACCEPTED && strncmp(r->detail, "field \"", 7) == 0)
		CHECK(named, "a rejection names a field, and it does not fit that field");
	json_decref(doc);
}

/* What every result promises, whichever path produced it. */
static void
check_result(const Result *r, const TaMapping *map, const TaMessage *msg)
{
	bool		value_utf8 = valid_utf8((const uint8_t *) msg->data, msg->len);

	CHECK(memchr(r->detail, '\0', sizeof(r->detail)) != NULL, "detail not terminated");
	CHECK(r->outcome >= TA_ACCEPTED && r->outcome < TA_NUM_OUTCOMES &&
		  r->outcome != TA_LATE && r->outcome != TA_REJ_FUTURE_TIMESTAMP,
		  "an outcome the parser does not give");
	CHECK((msg->len == 0) == (r->outcome == TA_REJ_EMPTY), "empty message misjudged");
	CHECK(r->outcome != TA_REJ_TOO_LARGE, "too_large at its own length");
	if (!value_utf8)
		CHECK(r->outcome == TA_REJ_INVALID_UTF8 || r->outcome == TA_REJ_NOT_JSON,
			  "invalid UTF-8 got past the parser");
	if (r->outcome == TA_REJ_INVALID_UTF8 && value_utf8)
	{
		/* then a key or header a field reads */
		bool		found = false;

		for (int s = 0; s < TA_MAX_FIELDS && !found; s++)
		{
			const TaFieldDef *d = &map->fields[s];
			Raw			raw;

			if (!d->in_use || (d->source != TA_FROM_KEY && d->source != TA_FROM_HEADER))
				continue;
			raw = raw_value(d, NULL, msg);
			found = raw.kind == RAW_STRING && !valid_utf8((const uint8_t *) raw.s, raw.len);
		}
		CHECK(found, "invalid_utf8 said of valid UTF-8");
	}
	if (r->outcome != TA_ACCEPTED)
	{
		CHECK(r->detail[0] != '\0', "a rejection without detail");
		check_mapping(r, map, msg);
		return;
	}

	CHECK(r->detail[0] == '\0', "detail on an accepted event");
	CHECK(r->ts_ms >= INT64CONST(-62135596800000) && r->ts_ms <= INT64CONST(253402300799999),
		  "event time outside years 1 to 9999");
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (r->value[f])
		{
			CHECK(map->fields[f].in_use, "a value in a free slot");
			CHECK(valid_utf8((const uint8_t *) r->value[f], r->value_len[f]),
				  "value not valid UTF-8");
		}
	if (r->has_status)
		CHECK(r->status_code >= 100 && r->status_code <= 599, "status_code out of range");
	if (r->has_latency)
		CHECK(r->latency_us >= 0 && r->latency_us <= INT64CONST(1000000000000000),
			  "latency out of range");
	check_mapping(r, map, msg);
}

/* FUZZ_EVENT_VERBOSE=1 in the environment: what each input gave */
static void
print_mapping(const TaMapping *map, const TaMessage *msg, const char *mapping_name)
{
	fprintf(stderr, "-- %s mapping:", mapping_name);
	for (int s = 0; s < TA_MAX_FIELDS; s++)
		if (map->fields[s].in_use)
			fprintf(stderr, " [%d]%s(%d %s t%d%s r%d f%d u%lld)", s, map->fields[s].name,
					map->fields[s].source, map->fields[s].path, map->fields[s].type,
					map->fields[s].required ? " req" : "", map->fields[s].role,
					map->fields[s].format, (long long) map->fields[s].unit_us);
	fprintf(stderr, "; key %s, timestamp %lld, %d headers; value %zu bytes\n",
			msg->key ? "yes" : "no", (long long) msg->timestamp_ms, msg->nheaders, msg->len);
}

/* Parse msg under map both ways, compare, check; and one byte over the limit. */
static void
fuzz_one(const TaMapping *map, const TaMessage *msg, const char *mapping_name)
{
	static int	verbose = -1;
	int			limit = (int) msg->len;

	/* the key and headers count in the limit too */
	limit += (int) msg->key_len;
	for (int h = 0; h < msg->nheaders; h++)
		limit += (int) msg->headers[h].len;

	if (verbose < 0)
		verbose = getenv("FUZZ_EVENT_VERBOSE") != NULL;
	if (verbose)
		print_mapping(map, msg, mapping_name);

	cur_mapping = mapping_name;
	parse_into(&fast, map, msg, limit, true);
	parse_into(&reference, map, msg, limit, false);
	if (!same_result(&fast, &reference))
		fail("the fast path and jansson differ");
	check_result(&fast, map, msg);
	if (verbose)
		print_result("   result", &fast);

	if (msg->len > 0)
	{
		parse_into(&over_limit, map, msg, limit - 1, true);
		if (over_limit.outcome != TA_REJ_TOO_LARGE)
		{
			print_result("over limit", &over_limit);
			fail("not too_large one byte over max_event_bytes");
		}
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len > (size_t) INT32_MAX)
		return -1;
	cur_data = data;
	cur_len = len;
	if (len > 0 && data[0] == '@')
	{
		const uint8_t *value;
		size_t		value_len;

		if (!read_control(data, len, &value, &value_len))
			return -1;			/* no mapping trafficagg would take: not kept */
		input.msg.data = (const char *) value;
		input.msg.len = value_len;
		fuzz_one(&input.map, &input.msg, "the input's");
	}
	else
	{
		TaMessage	msg = {.data = (const char *) data, .len = len, .timestamp_ms = TA_NO_TIME};

		fuzz_one(mapping_default(), &msg, "the default");
		fuzz_one(nested_mapping(), &msg, "the nested");
	}
	return 0;
}
