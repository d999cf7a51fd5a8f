/*-------------------------------------------------------------------------
 *
 * event.c
 *	  Parse and validate one message into a TaEvent, or say why not.
 *
 * This stage owns the event schema: which fields exist, which are required,
 * their types, and the names of the rejection reasons.  It knows nothing of
 * windows or shared memory.  jansson is the reference parser and decides
 * every error (it also checks UTF-8); a fast scanner handles the common
 * shape of an event and defers to jansson for anything else (see
 * fast_scan).  Timestamps (RFC 3339 with an offset, or integer epoch
 * milliseconds) are parsed here.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>

#include "event.h"


/* Names of the outcomes, as stored in rejected_events.reason and status. */
static const char *const outcome_names[TA_NUM_OUTCOMES] = {
	[TA_ACCEPTED] = "accepted",
	[TA_LATE] = "late",
	[TA_REJ_EMPTY] = "empty",
	[TA_REJ_TOO_LARGE] = "too_large",
	[TA_REJ_INVALID_UTF8] = "invalid_utf8",
	[TA_REJ_NOT_JSON] = "not_json",
	[TA_REJ_NOT_OBJECT] = "not_object",
	[TA_REJ_MISSING_FIELD] = "missing_field",
	[TA_REJ_WRONG_TYPE] = "wrong_type",
	[TA_REJ_BAD_TIMESTAMP] = "bad_timestamp",
	[TA_REJ_VALUE_TOO_LONG] = "value_too_long",
	[TA_REJ_FUTURE_TIMESTAMP] = "future_timestamp",
};

/* The string-valued fields (status_code is handled on its own). */
static const struct
{
	const char *name;
	bool		required;
}			string_fields[TA_NUM_FIELDS] = {
	[TA_F_EVENT_TYPE] = {"event_type", true},
	[TA_F_PAGE] = {"page", true},
	[TA_F_USER_ID] = {"user_id", false},
	[TA_F_SESSION_ID] = {"session_id", false},
	[TA_F_COUNTRY] = {"country", false},
	[TA_F_DEVICE] = {"device", false},
	[TA_F_REFERRER] = {"referrer", false},
	[TA_F_STATUS_CODE] = {"status_code", false},
};

const char *
outcome_name(TaOutcome outcome)
{
	Assert(outcome >= 0 && outcome < TA_NUM_OUTCOMES);
	return outcome_names[outcome];
}

const char *
field_name(TaField field)
{
	Assert(field >= 0 && field < TA_NUM_FIELDS);
	return string_fields[field].name;
}

/* The field called name, or -1. */
int
field_by_name(const char *name)
{
	for (int i = 0; i < TA_NUM_FIELDS; i++)
		if (strcmp(string_fields[i].name, name) == 0)
			return i;
	return -1;
}

static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64
days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64) era * 146097 + doe - 719468;
}

/*
 * Parse an RFC 3339 date-time: YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.frac](Z|z|+hh:mm|-hh:mm).
 * Fractions beyond milliseconds are truncated toward the past, which keeps
 * every instant in the same window as the exact value.  A leap second (:60)
 * is accepted and counts as the first millisecond of the next minute, as
 * PostgreSQL's timestamptz input does.
 */
bool
parse_rfc3339(const char *s, int64 *ms)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				frac_ms = 0;
	int			offset_min = 0;
	const char *p;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			dim;

	if (strlen(s) < 20)
		return false;
	if ((y = digits(s, 4)) < 0 || s[4] != '-' ||
		(mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
		(d = digits(s + 8, 2)) < 0 ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		(h = digits(s + 11, 2)) < 0 || s[13] != ':' ||
		(mi = digits(s + 14, 2)) < 0 || s[16] != ':' ||
		(sec = digits(s + 17, 2)) < 0)
		return false;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
		return false;
	dim = mdays[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
	if (d < 1 || d > dim)
		return false;

	p = s + 19;
	if (*p == '.')
	{
		int			n = 0;

		p++;
		while (*p >= '0' && *p <= '9')
		{
			if (n < 3)
				frac_ms = frac_ms * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0)
			return false;
		for (; n < 3; n++)
			frac_ms *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			oh,
					om;

		if ((oh = digits(p + 1, 2)) < 0 || p[3] != ':' ||
			(om = digits(p + 4, 2)) < 0 || oh > 23 || om > 59)
			return false;
		offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
		p += 6;
	}
	else
		return false;
	if (*p != '\0')
		return false;

	*ms = ((days_from_civil(y, mo, d) * 86400 +
			h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms;
	return true;
}

/* Format ms since the epoch as RFC 3339 UTC with milliseconds into buf. */
char *
format_rfc3339(int64 ms, char *buf, size_t len)
{
	int64		days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64		rem = ms - days * 86400000;
	int64		z = days + 719468;
	int64		era = (z >= 0 ? z : z - 146096) / 146097;
	int64		doe = z - era * 146097;
	int64		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64		mp = (5 * doy + 2) / 153;
	int			d = (int) (doy - (153 * mp + 2) / 5 + 1);
	int			m = (int) (mp < 10 ? mp + 3 : mp - 9);
	int64		y = yoe + era * 400 + (m <= 2);

	snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long) y, m, d,
			 (int) (rem / 3600000), (int) (rem / 60000 % 60), (int) (rem / 1000 % 60),
			 (int) (rem % 1000));
	return buf;
}

/*
 * The fields we read, as either parser found them.  Strings point into the
 * message (fast path) or into jansson's document, and are not terminated.
 */
typedef enum
{
	JV_MISSING,
	JV_NULL,
	JV_STRING,
	JV_INTEGER,
	JV_REAL,
	JV_OTHER					/* true, false, object, array */
} JsonType;

typedef struct JsonField
{
	JsonType	type;
	const char *str;
	size_t		len;
	int64		i;
	double		d;
} JsonField;

/* The keys read, in this order: the string fields, then these two. */
#define K_STATUS_CODE		TA_F_STATUS_CODE
#define K_RESPONSE_TIME		TA_NUM_FIELDS
#define K_TIMESTAMP			(TA_NUM_FIELDS + 1)
#define NUM_KEYS			(TA_NUM_FIELDS + 2)

static const char *
key_name(int k)
{
	if (k == K_RESPONSE_TIME)
		return "response_time_ms";
	if (k == K_TIMESTAMP)
		return "timestamp";
	return string_fields[k].name;
}

static int
key_index(const char *name, size_t len)
{
	for (int k = 0; k < NUM_KEYS; k++)
	{
		const char *kn = key_name(k);

		if (strlen(kn) == len && memcmp(kn, name, len) == 0)
			return k;
	}
	return -1;
}

/* ---------------------------------------------------------------------
 * The fast path: a validating scanner for the common shape of an event, a
 * flat JSON object of ASCII keys and values without escapes.  Anything else
 * (escapes, non-ASCII bytes, nested values, duplicate keys, any syntax
 * error) makes it give up, and jansson, the reference, decides.  So it never
 * has to classify an error; it must only agree with jansson on documents it
 * accepts, which t/006_parser_differential.pl checks by fuzzing.
 * ---------------------------------------------------------------------
 */
#define FAST_MAX_KEYS 64

static inline const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A string without escapes, control characters or non-ASCII bytes. */
static inline const char *
scan_string(const char *p, const char *end, const char **s, size_t *len)
{
	const char *q = ++p;		/* after the opening quote */

	while (q < end && *q != '"')
	{
		unsigned char c = (unsigned char) *q;

		if (c < 0x20 || c >= 0x80 || c == '\\')
			return NULL;
		q++;
	}
	if (q >= end)
		return NULL;
	*s = p;
	*len = q - p;
	return q + 1;
}

/* A JSON number, classified as jansson does (integer unless '.', 'e', 'E'). */
static inline const char *
scan_number(const char *p, const char *end, JsonField *f)
{
	const char *start = p;
	bool		real = false;
	char		buf[64];

	if (p < end && *p == '-')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	if (*p == '0')
		p++;
	else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	if (p < end && *p == '.')
	{
		real = true;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		real = true;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p - start >= (ptrdiff_t) sizeof(buf))
		return NULL;
	memcpy(buf, start, p - start);
	buf[p - start] = '\0';
	if (real)
	{
		char	   *e;

		f->type = JV_REAL;
		f->d = strtod(buf, &e);
		if (!isfinite(f->d))
			return NULL;		/* jansson: overflow error */
	}
	else
	{
		if (p - start > 18)
			return NULL;		/* may not fit: let jansson decide */
		f->type = JV_INTEGER;
		f->i = strtoll(buf, NULL, 10);
		f->d = (double) f->i;
	}
	return p;
}

static bool
fast_scan(const char *data, size_t len, JsonField *fields)
{
	const char *p = data,
			   *end = data + len;
	const char *keys[FAST_MAX_KEYS];
	size_t		keylens[FAST_MAX_KEYS];
	int			nkeys = 0;

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return false;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		p++;
	else
	{
		for (;;)
		{
			const char *key;
			size_t		keylen;
			int			k;
			JsonField	tmp,
					   *f;

			if (p >= end || *p != '"' || (p = scan_string(p, end, &key, &keylen)) == NULL)
				return false;
			for (int i = 0; i < nkeys; i++)
				if (keylens[i] == keylen && memcmp(keys[i], key, keylen) == 0)
					return false;	/* duplicate: jansson rejects */
			if (nkeys == FAST_MAX_KEYS)
				return false;
			keys[nkeys] = key;
			keylens[nkeys++] = keylen;

			p = skip_ws(p, end);
			if (p >= end || *p != ':')
				return false;
			p = skip_ws(p + 1, end);
			if (p >= end)
				return false;

			k = key_index(key, keylen);
			f = k >= 0 ? &fields[k] : &tmp;
			memset(f, 0, sizeof(*f));
			switch (*p)
			{
				case '"':
					f->type = JV_STRING;
					p = scan_string(p, end, &f->str, &f->len);
					break;
				case 'n':
					f->type = JV_NULL;
					p = (end - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;
					break;
				case 't':
					f->type = JV_OTHER;
					p = (end - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;
					break;
				case 'f':
					f->type = JV_OTHER;
					p = (end - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;
					break;
				default:
					p = scan_number(p, end, f);
					break;
			}
			if (p == NULL)
				return false;
			p = skip_ws(p, end);
			if (p < end && *p == ',')
			{
				p = skip_ws(p + 1, end);
				continue;
			}
			if (p < end && *p == '}')
			{
				p++;
				break;
			}
			return false;
		}
	}
	return skip_ws(p, end) == end;
}

/* ---------------------------------------------------------------------
 * The reference path: jansson.  Also decides every error.
 * ---------------------------------------------------------------------
 */
static TaOutcome
jansson_scan(const char *data, size_t len, JsonField *fields, json_t **doc,
			 char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t	   *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

	*doc = root;
	if (root == NULL)
	{
		snprintf(detail, detail_len, "%s at byte %d", jerr.text, jerr.position);
		return json_error_code(&jerr) == json_error_invalid_utf8
			? TA_REJ_INVALID_UTF8 : TA_REJ_NOT_JSON;
	}
	if (!json_is_object(root))
	{
		snprintf(detail, detail_len, "top-level value is not a JSON object");
		return TA_REJ_NOT_OBJECT;
	}
	for (int k = 0; k < NUM_KEYS; k++)
	{
		json_t	   *v = json_object_get(root, key_name(k));
		JsonField  *f = &fields[k];

		memset(f, 0, sizeof(*f));
		if (v == NULL)
			f->type = JV_MISSING;
		else if (json_is_null(v))
			f->type = JV_NULL;
		else if (json_is_string(v))
		{
			f->type = JV_STRING;
			f->str = json_string_value(v);
			f->len = json_string_length(v);
		}
		else if (json_is_integer(v))
		{
			f->type = JV_INTEGER;
			f->i = json_integer_value(v);
			f->d = json_number_value(v);
		}
		else if (json_is_real(v))
		{
			f->type = JV_REAL;
			f->d = json_real_value(v);
		}
		else
			f->type = JV_OTHER;
	}
	return TA_ACCEPTED;
}

/* Copy a field's string, NUL-terminated, into the event's buffer. */
static const char *
keep_string(TaEvent *ev, const JsonField *f)
{
	char	   *s = ev->strings + ev->strings_used;

	memcpy(s, f->str, f->len);
	s[f->len] = '\0';
	ev->strings_used += f->len + 1;
	return s;
}

#define REJECT(reason, ...) \
	do { \
		snprintf(detail, detail_len, __VA_ARGS__); \
		return (reason); \
	} while (0)

/*
 * Event times are kept within years 1 to 9999 UTC, what timestamptz and the
 * window arithmetic handle, whether they came as numbers or strings.
 */
static inline bool
event_time_in_range(int64 ms)
{
	return ms >= INT64CONST(-62135596800000) && ms <= INT64CONST(253402300799999);
}

/* The event schema, applied to the fields either parser found. */
static TaOutcome
validate_fields(const JsonField *fields, TaEvent *ev, char *detail, size_t detail_len)
{
	const JsonField *f;

	/* timestamp: RFC 3339 string or integer epoch milliseconds */
	f = &fields[K_TIMESTAMP];
	if (f->type == JV_MISSING || f->type == JV_NULL)
		REJECT(TA_REJ_MISSING_FIELD, "field \"timestamp\" is missing");
	if (f->type == JV_INTEGER)
	{
		if (!event_time_in_range(f->i))
			REJECT(TA_REJ_BAD_TIMESTAMP, "epoch milliseconds %lld out of range",
				   (long long) f->i);
		ev->ts_ms = f->i;
	}
	else if (f->type == JV_STRING)
	{
		char		buf[64];

		if (f->len >= sizeof(buf) || memchr(f->str, '\0', f->len) != NULL)
			REJECT(TA_REJ_BAD_TIMESTAMP, "\"%.*s\" is not an RFC 3339 date-time with offset",
				   (int) Min(f->len, 64), f->str);
		memcpy(buf, f->str, f->len);
		buf[f->len] = '\0';
		if (!parse_rfc3339(buf, &ev->ts_ms))
			REJECT(TA_REJ_BAD_TIMESTAMP, "\"%.64s\" is not an RFC 3339 date-time with offset",
				   buf);
		/* a four-digit year with an offset can still land outside them */
		if (!event_time_in_range(ev->ts_ms))
			REJECT(TA_REJ_BAD_TIMESTAMP, "\"%.64s\" is out of range (years 1 to 9999 UTC)",
				   buf);
	}
	else
		REJECT(TA_REJ_WRONG_TYPE, "field \"timestamp\" must be a string or an integer");

	/* string fields */
	for (int k = 0; k < TA_NUM_FIELDS; k++)
	{
		const char *name = string_fields[k].name;

		if (k == TA_F_STATUS_CODE)
			continue;
		f = &fields[k];
		if (f->type == JV_MISSING || f->type == JV_NULL)
		{
			if (string_fields[k].required)
				REJECT(TA_REJ_MISSING_FIELD, "field \"%s\" is missing", name);
			continue;
		}
		if (f->type != JV_STRING)
			REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a string", name);
		if (f->len >= TA_MAX_VALUE_LEN)
			REJECT(TA_REJ_VALUE_TOO_LONG, "field \"%s\" is %zu bytes, at most %d are allowed",
				   name, f->len, TA_MAX_VALUE_LEN - 1);
		ev->field[k] = keep_string(ev, f);
	}

	/* status_code: optional integer 100..599 */
	f = &fields[K_STATUS_CODE];
	if (f->type != JV_MISSING && f->type != JV_NULL)
	{
		if (f->type != JV_INTEGER)
			REJECT(TA_REJ_WRONG_TYPE, "field \"status_code\" must be an integer");
		if (f->i < 100 || f->i > 599)
			REJECT(TA_REJ_WRONG_TYPE, "field \"status_code\" is %lld, not between 100 and 599",
				   (long long) f->i);
		ev->has_status = true;
		ev->status_code = (int32) f->i;
		snprintf(ev->status_text, sizeof(ev->status_text), "%d", ev->status_code);
		ev->field[TA_F_STATUS_CODE] = ev->status_text;
	}

	/* response_time_ms: optional number >= 0, kept in microseconds */
	f = &fields[K_RESPONSE_TIME];
	if (f->type != JV_MISSING && f->type != JV_NULL)
	{
		if (f->type != JV_INTEGER && f->type != JV_REAL)
			REJECT(TA_REJ_WRONG_TYPE, "field \"response_time_ms\" must be a number");
		if (!(f->d >= 0) || f->d > 1e12)
			REJECT(TA_REJ_WRONG_TYPE, "field \"response_time_ms\" is %g, not between 0 and 1e12",
				   f->d);
		ev->has_latency = true;
		ev->latency_us = f->type == JV_INTEGER ? f->i * 1000 : (int64) llround(f->d * 1000.0);
	}
	return TA_ACCEPTED;
}

/*
 * Validate one message.  On TA_ACCEPTED, *ev is filled (its strings live in
 * ev->strings, valid until the next call or event_free); otherwise detail
 * says what is wrong.  use_fast = false forces the reference parser (tests).
 */
TaOutcome
event_parse_with(const char *data, size_t len, TaEvent *ev, char *detail,
				 size_t detail_len, bool use_fast)
{
	JsonField	fields[NUM_KEYS];
	json_t	   *doc = NULL;
	TaOutcome	outcome;
	static char *strings = NULL;
	static size_t strings_cap = 0;

	memset(ev, 0, offsetof(TaEvent, status_text));
	detail[0] = '\0';

	if (data == NULL || len == 0)
		REJECT(TA_REJ_EMPTY, "message has no value");
	if (len > (size_t) ta_max_event_bytes)
		REJECT(TA_REJ_TOO_LARGE, "message is %zu bytes, trafficagg.max_event_bytes is %d",
			   len, ta_max_event_bytes);

	/* room for every string field, NUL-terminated: never more than len + keys */
	if (strings_cap < len + NUM_KEYS + 1)
	{
		strings_cap = Max(len + NUM_KEYS + 1, 4096);
		free(strings);
		strings = malloc(strings_cap);
		if (strings == NULL)
		{
			/* a fault of this server, not of the message: not a rejection */
			strings_cap = 0;
#ifdef TA_STANDALONE_PARSER
			fprintf(stderr, "out of memory for a %zu-byte message\n", len);
			abort();
#else
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Failed on request of size %zu in the trafficagg event parser.",
							   len + NUM_KEYS + 1)));
#endif
		}
	}
	ev->strings = strings;
	ev->strings_used = 0;

	for (int k = 0; k < NUM_KEYS; k++)
		fields[k].type = JV_MISSING;
	if (use_fast && fast_scan(data, len, fields))
		outcome = validate_fields(fields, ev, detail, detail_len);
	else
	{
		outcome = jansson_scan(data, len, fields, &doc, detail, detail_len);
		if (outcome == TA_ACCEPTED)
			outcome = validate_fields(fields, ev, detail, detail_len);
		if (doc)
			json_decref(doc);
	}
	return outcome;
}

TaOutcome
event_parse(const char *data, size_t len, TaEvent *ev, char *detail, size_t detail_len)
{
	return event_parse_with(data, len, ev, detail, detail_len, true);
}

void
event_free(TaEvent *ev)
{
	/* the strings live in a buffer reused by the next event_parse */
	ev->strings = NULL;
}
