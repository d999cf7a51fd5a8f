/*-------------------------------------------------------------------------
 *
 * event.c
 *	  Parse and validate one message into a TaEvent, or say why not.
 *
 * This stage owns the event schema: which fields exist, which are required,
 * their types, and the names of the rejection reasons.  It knows nothing of
 * windows or shared memory.  Parsing is done by jansson, which also checks
 * UTF-8; timestamps (RFC 3339 with an offset, or integer epoch
 * milliseconds) are parsed here.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <math.h>

#include <jansson.h>

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

#define REJECT(reason, ...) \
	do { \
		snprintf(detail, detail_len, __VA_ARGS__); \
		json_decref(root); \
		ev->json = NULL; \
		return (reason); \
	} while (0)

/*
 * Validate one message.  On TA_ACCEPTED, *ev is filled and must be released
 * with event_free; otherwise detail says what is wrong and nothing is held.
 */
TaOutcome
event_parse(const char *data, size_t len, TaEvent *ev, char *detail,
			size_t detail_len)
{
	json_t	   *root = NULL;
	json_t	   *v;
	json_error_t jerr;

	memset(ev, 0, sizeof(*ev));
	detail[0] = '\0';

	if (data == NULL || len == 0)
		REJECT(TA_REJ_EMPTY, "message has no value");
	if (len > (size_t) ta_max_event_bytes)
		REJECT(TA_REJ_TOO_LARGE, "message is %zu bytes, trafficagg.max_event_bytes is %d",
			   len, ta_max_event_bytes);

	root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (root == NULL)
	{
		if (json_error_code(&jerr) == json_error_invalid_utf8)
			REJECT(TA_REJ_INVALID_UTF8, "%s at byte %d", jerr.text, jerr.position);
		REJECT(TA_REJ_NOT_JSON, "%s at byte %d", jerr.text, jerr.position);
	}
	if (!json_is_object(root))
		REJECT(TA_REJ_NOT_OBJECT, "top-level value is not a JSON object");

	/* timestamp: RFC 3339 string or integer epoch milliseconds */
	v = json_object_get(root, "timestamp");
	if (v == NULL || json_is_null(v))
		REJECT(TA_REJ_MISSING_FIELD, "field \"timestamp\" is missing");
	if (json_is_integer(v))
	{
		json_int_t	t = json_integer_value(v);

		/* keep within what timestamptz and the window arithmetic handle */
		if (t < INT64CONST(-62135596800000) || t > INT64CONST(253402300799999))
			REJECT(TA_REJ_BAD_TIMESTAMP, "epoch milliseconds %lld out of range",
				   (long long) t);
		ev->ts_ms = t;
	}
	else if (json_is_string(v))
	{
		if (!parse_rfc3339(json_string_value(v), &ev->ts_ms))
			REJECT(TA_REJ_BAD_TIMESTAMP, "\"%.64s\" is not an RFC 3339 date-time with offset",
				   json_string_value(v));
	}
	else
		REJECT(TA_REJ_WRONG_TYPE, "field \"timestamp\" must be a string or an integer");

	/* string fields */
	for (int f = 0; f < TA_NUM_FIELDS; f++)
	{
		const char *name = string_fields[f].name;

		if (f == TA_F_STATUS_CODE)
			continue;
		v = json_object_get(root, name);
		if (v == NULL || json_is_null(v))
		{
			if (string_fields[f].required)
				REJECT(TA_REJ_MISSING_FIELD, "field \"%s\" is missing", name);
			continue;
		}
		if (!json_is_string(v))
			REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a string", name);
		if (json_string_length(v) >= TA_MAX_VALUE_LEN)
			REJECT(TA_REJ_VALUE_TOO_LONG, "field \"%s\" is %zu bytes, at most %d are allowed",
				   name, json_string_length(v), TA_MAX_VALUE_LEN - 1);
		ev->field[f] = json_string_value(v);
	}

	/* status_code: optional integer 100..599 */
	v = json_object_get(root, "status_code");
	if (v != NULL && !json_is_null(v))
	{
		json_int_t	sc;

		if (!json_is_integer(v))
			REJECT(TA_REJ_WRONG_TYPE, "field \"status_code\" must be an integer");
		sc = json_integer_value(v);
		if (sc < 100 || sc > 599)
			REJECT(TA_REJ_WRONG_TYPE, "field \"status_code\" is %lld, not between 100 and 599",
				   (long long) sc);
		ev->has_status = true;
		ev->status_code = (int32) sc;
		snprintf(ev->status_text, sizeof(ev->status_text), "%d", ev->status_code);
		ev->field[TA_F_STATUS_CODE] = ev->status_text;
	}

	/* response_time_ms: optional number >= 0, kept in microseconds */
	v = json_object_get(root, "response_time_ms");
	if (v != NULL && !json_is_null(v))
	{
		double		rt;

		if (!json_is_number(v))
			REJECT(TA_REJ_WRONG_TYPE, "field \"response_time_ms\" must be a number");
		rt = json_number_value(v);
		if (!(rt >= 0) || rt > 1e12)
			REJECT(TA_REJ_WRONG_TYPE, "field \"response_time_ms\" is %g, not between 0 and 1e12",
				   rt);
		ev->has_latency = true;
		ev->latency_us = json_is_integer(v) ? (int64) json_integer_value(v) * 1000
			: (int64) llround(rt * 1000.0);
	}

	ev->json = root;
	return TA_ACCEPTED;
}

void
event_free(TaEvent *ev)
{
	if (ev->json)
		json_decref((json_t *) ev->json);
	ev->json = NULL;
}
