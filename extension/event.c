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

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "port/pg_bitutils.h"

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

const char *
outcome_name(TaOutcome outcome)
{
	Assert(outcome >= 0 && outcome < TA_NUM_OUTCOMES);
	return outcome_names[outcome];
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
	int			sec,
				frac_ms = 0;
	int			offset_min = 0;
	const char *p;
	int64		minute_s;

	/*
	 * The date, hour and minute (the first 16 bytes) of the last time parsed:
	 * the events of a stream share them for a minute at a time, so only the
	 * seconds and what follows are parsed again.
	 */
	static char last_prefix[16];
	static int64 last_minute_s;
	static bool last_valid = false;

	if (strlen(s) < 20)
		return false;
	if (last_valid && memcmp(s, last_prefix, 16) == 0)
		minute_s = last_minute_s;
	else
	{
		static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int			y,
					mo,
					d,
					h,
					mi,
					dim;

		if ((y = digits(s, 4)) < 0 || s[4] != '-' ||
			(mo = digits(s + 5, 2)) < 0 || s[7] != '-' ||
			(d = digits(s + 8, 2)) < 0 ||
			(s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
			(h = digits(s + 11, 2)) < 0 || s[13] != ':' ||
			(mi = digits(s + 14, 2)) < 0)
			return false;
		if (mo < 1 || mo > 12 || h > 23 || mi > 59)
			return false;
		dim = mdays[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
		if (d < 1 || d > dim)
			return false;
		minute_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
		memcpy(last_prefix, s, 16);
		last_minute_s = minute_s;
		last_valid = true;
	}
	if (s[16] != ':' || (sec = digits(s + 17, 2)) < 0 || sec > 60)
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

	*ms = ((minute_s + sec - offset_min * 60) * 1000) + frac_ms;
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

/* ---------------------------------------------------------------------
 * The default mapping: the event schema of trafficagg's producer, what
 * trafficagg.fields holds after CREATE EXTENSION.  Slots in this order, so
 * that the fields are checked in it (the first problem found is reported).
 * ---------------------------------------------------------------------
 */
#define DEFAULT_FIELD(n, t, req, r) \
	{.in_use = true, .name = n, .source = TA_FROM_VALUE, .path = n, .type = (t), \
	 .required = (req), .role = (r), .format = TA_TIME_AUTO, .unit_us = 1000}

static const TaFieldDef default_fields[] = {
	DEFAULT_FIELD("timestamp", TA_TYPE_TIME, true, TA_ROLE_EVENT_TIME),
	DEFAULT_FIELD("event_type", TA_TYPE_TEXT, true, TA_ROLE_NONE),
	DEFAULT_FIELD("page", TA_TYPE_TEXT, true, TA_ROLE_NONE),
	DEFAULT_FIELD("user_id", TA_TYPE_TEXT, false, TA_ROLE_USER_ID),
	DEFAULT_FIELD("session_id", TA_TYPE_TEXT, false, TA_ROLE_NONE),
	DEFAULT_FIELD("country", TA_TYPE_TEXT, false, TA_ROLE_NONE),
	DEFAULT_FIELD("device", TA_TYPE_TEXT, false, TA_ROLE_NONE),
	DEFAULT_FIELD("referrer", TA_TYPE_TEXT, false, TA_ROLE_NONE),
	DEFAULT_FIELD("status_code", TA_TYPE_INTEGER, false, TA_ROLE_STATUS),
	DEFAULT_FIELD("response_time_ms", TA_TYPE_NUMBER, false, TA_ROLE_LATENCY),
};

const TaMapping *
mapping_default(void)
{
	static TaMapping map;
	static bool built = false;

	if (!built)
	{
		memset(&map, 0, sizeof(map));
		for (int i = 0; i < lengthof(default_fields); i++)
			map.fields[i] = default_fields[i];
		built = true;
	}
	return &map;
}

/* The slot of the field called name, or -1. */
int
mapping_find(const TaMapping *map, const char *name)
{
	for (int i = 0; i < TA_MAX_FIELDS; i++)
		if (map->fields[i].in_use && strcmp(map->fields[i].name, name) == 0)
			return i;
	return -1;
}

/* Does any field come from a Kafka header?  (Then consume.c reads them.) */
bool
mapping_uses_headers(const TaMapping *map)
{
	for (int i = 0; i < TA_MAX_FIELDS; i++)
		if (map->fields[i].in_use && map->fields[i].source == TA_FROM_HEADER)
			return true;
	return false;
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
	bool		plain;			/* a string of the fast path: no NUL in it */
	const char *str;
	size_t		len;
	int64		i;
	double		d;
} JsonField;

/* ---------------------------------------------------------------------
 * The parse plan: the paths of a mapping's value fields as a tree of JSON
 * keys, built once per mapping version.  A node's children are contiguous;
 * node 0 is the top-level object.  Both parsers walk it.
 * ---------------------------------------------------------------------
 */
#define PLAN_MAX_NODES (TA_MAX_FIELDS * TA_MAX_PATH_DEPTH + 1)
#define PLAN_LOOKUP_SIZE 1024	/* a power of two, over twice PLAN_MAX_NODES */

typedef struct PlanNode
{
	const char *key;			/* into the plan's copy of the paths */
	int			keylen;
	int			slot;			/* a field whose path ends here, or -1; */
	int			first_child;
	int			nchildren;
	int			parent;
} PlanNode;

typedef struct Plan
{
	const TaMapping *map;		/* built for this mapping ... */
	uint32		version;		/* ... at this version */
	int			nnodes;
	int			next_same[TA_MAX_FIELDS];	/* ... the next one with that path,
											 * or -1 */
	int			copies;			/* fields sharing a path with an earlier one */
	int			from_key;		/* fields reading the key */
	int			from_header;	/* fields reading a header */
	int			nused;			/* the mapping's fields in use ... */
	int			used[TA_MAX_FIELDS];	/* ... their slots, in order */
	PlanNode	nodes[PLAN_MAX_NODES];
	char		paths[TA_MAX_FIELDS][TA_MAX_PATH_LEN];
	/* every node but the root by (parent, key): open addressing, -1 empty */
	int16		lookup[PLAN_LOOKUP_SIZE];
} Plan;

static Plan plan;

/*
 * A key's hash: its length and its first and last eight bytes (of a shorter
 * key its first, middle and last byte; keys differing only elsewhere share a
 * hash, and are told apart by comparing them).
 */
static inline uint32
key_hash(const char *key, size_t len)
{
	uint64		w;

	if (len >= 8)
	{
		uint64		last;

		memcpy(&w, key, 8);
		memcpy(&last, key + len - 8, 8);
		w ^= last * UINT64CONST(0xC2B2AE3D27D4EB4F);
	}
	else if (len > 0)
		w = (unsigned char) key[0] | (unsigned char) key[len / 2] << 8 |
			(uint64) (unsigned char) key[len - 1] << 16;
	else
		w = 0;
	w = (w ^ len) * UINT64CONST(0x9E3779B97F4A7C15);
	return (uint32) (w >> 32);
}

/* Where the plan's lookup starts looking for a child of node with this key hash. */
static inline uint32
plan_slot(int node, uint32 hash)
{
	return (hash ^ ((uint32) node * 0x85EBCA6B)) & (PLAN_LOOKUP_SIZE - 1);
}

/*
 * Build the plan for map: breadth first, so that the children of a node are
 * contiguous.  Paths are split at '.'; catalog.c (and the SQL checks before
 * it) guarantee at most TA_MAX_PATH_DEPTH non-empty segments.
 */
static const Plan *
plan_for(const TaMapping *map)
{
	typedef struct
	{
		int			slot;
		int			depth;
		const char *seg[TA_MAX_PATH_DEPTH];
		int			seglen[TA_MAX_PATH_DEPTH];
		int			nseg;
	} Path;
	Path		paths[TA_MAX_FIELDS];
	int			npaths = 0;
	int			head = 0;

	if (plan.map == map && plan.version == map->version && plan.nnodes > 0)
		return &plan;
	memset(&plan, 0, offsetof(Plan, nodes));
	for (int f = 0; f < TA_MAX_FIELDS; f++)
	{
		const TaFieldDef *d = &map->fields[f];
		Path	   *p = &paths[npaths];
		const char *c;

		if (d->in_use)
		{
			plan.used[plan.nused++] = f;
			plan.from_key += d->source == TA_FROM_KEY;
			plan.from_header += d->source == TA_FROM_HEADER;
		}
		if (!d->in_use || d->source != TA_FROM_VALUE)
			continue;
		strlcpy(plan.paths[f], d->path, TA_MAX_PATH_LEN);
		p->slot = f;
		p->nseg = 0;
		c = plan.paths[f];
		while (*c && p->nseg < TA_MAX_PATH_DEPTH)
		{
			const char *dot = strchr(c, '.');
			int			n = dot ? (int) (dot - c) : (int) strlen(c);

			p->seg[p->nseg] = c;
			p->seglen[p->nseg++] = n;
			c += n + (dot ? 1 : 0);
		}
		if (p->nseg > 0)
			npaths++;
	}

	/* node 0: the root; then level by level */
	plan.nodes[0] = (PlanNode) {NULL, 0, -1, 1, 0, -1};
	plan.nnodes = 1;
	for (int node = 0; node < plan.nnodes; node++)
	{
		int			depth = 0;
		int			up = node;
		const char *prefix[TA_MAX_PATH_DEPTH];
		int			prefixlen[TA_MAX_PATH_DEPTH];

		/* the node's path from the root (walk up via the parents' ranges) */
		while (up != 0)
		{
			int			parent = 0;

			for (int q = 0; q < up; q++)
				if (plan.nodes[q].nchildren > 0 && up >= plan.nodes[q].first_child &&
					up < plan.nodes[q].first_child + plan.nodes[q].nchildren)
					parent = q;
			depth++;
			up = parent;
		}
		up = node;
		for (int k = depth - 1; k >= 0; k--)
		{
			int			parent = 0;

			prefix[k] = plan.nodes[up].key;
			prefixlen[k] = plan.nodes[up].keylen;
			for (int q = 0; q < up; q++)
				if (plan.nodes[q].nchildren > 0 && up >= plan.nodes[q].first_child &&
					up < plan.nodes[q].first_child + plan.nodes[q].nchildren)
					parent = q;
			up = parent;
		}
		plan.nodes[node].first_child = plan.nnodes;
		for (int i = 0; i < npaths; i++)
		{
			Path	   *p = &paths[i];
			bool		under = p->nseg > depth;
			int			c;

			for (int k = 0; k < depth && under; k++)
				under = p->seglen[k] == prefixlen[k] &&
					memcmp(p->seg[k], prefix[k], prefixlen[k]) == 0;
			if (!under)
				continue;
			/* one child per distinct next segment */
			for (c = plan.nodes[node].first_child; c < plan.nnodes; c++)
				if (plan.nodes[c].keylen == p->seglen[depth] &&
					memcmp(plan.nodes[c].key, p->seg[depth], p->seglen[depth]) == 0)
					break;
			if (c == plan.nnodes)
			{
				Assert(plan.nnodes < PLAN_MAX_NODES);
				plan.nodes[c] = (PlanNode) {p->seg[depth], p->seglen[depth], -1, 0, 0, node};
				plan.nnodes++;
			}
			if (p->nseg == depth + 1)
			{
				/* two fields may read the same path: chain them */
				int		   *last = &plan.nodes[c].slot;

				while (*last >= 0)
				{
					last = &plan.next_same[*last];
					plan.copies++;
				}
				*last = p->slot;
				plan.next_same[p->slot] = -1;
			}
		}
		plan.nodes[node].nchildren = plan.nnodes - plan.nodes[node].first_child;
	}
	(void) head;
	memset(plan.lookup, -1, sizeof(plan.lookup));
	StaticAssertStmt(PLAN_LOOKUP_SIZE >= 2 * PLAN_MAX_NODES, "plan lookup too small");
	for (int c = 1; c < plan.nnodes; c++)
	{
		uint32		h = plan_slot(plan.nodes[c].parent,
								  key_hash(plan.nodes[c].key, plan.nodes[c].keylen));

		while (plan.lookup[h] >= 0)
			h = (h + 1) & (PLAN_LOOKUP_SIZE - 1);
		plan.lookup[h] = (int16) c;
	}
	plan.map = map;
	plan.version = map->version;
	return &plan;
}

/* Are the len bytes at a and b the same?  (memcmp inline for the short keys of JSON) */
static inline bool
same_bytes(const char *a, const char *b, size_t len)
{
	if (len >= 8 && len <= 16)
	{
		uint64		a0,
					a1,
					b0,
					b1;

		memcpy(&a0, a, 8);
		memcpy(&b0, b, 8);
		memcpy(&a1, a + len - 8, 8);
		memcpy(&b1, b + len - 8, 8);
		return ((a0 ^ b0) | (a1 ^ b1)) == 0;
	}
	if (len >= 4 && len < 8)
	{
		uint32		a0,
					a1,
					b0,
					b1;

		memcpy(&a0, a, 4);
		memcpy(&b0, b, 4);
		memcpy(&a1, a + len - 4, 4);
		memcpy(&b1, b + len - 4, 4);
		return ((a0 ^ b0) | (a1 ^ b1)) == 0;
	}
	return memcmp(a, b, len) == 0;
}

/* The child of node called key (whose key_hash is hash), or -1. */
static inline int
plan_child(const Plan *pl, int node, const char *key, size_t keylen, uint32 hash)
{
	uint32		h;
	int			c;

	if (node < 0 || pl->nodes[node].nchildren == 0)
		return -1;
	for (h = plan_slot(node, hash); (c = pl->lookup[h]) >= 0; h = (h + 1) & (PLAN_LOOKUP_SIZE - 1))
		if (pl->nodes[c].parent == node && pl->nodes[c].keylen == (int) keylen &&
			same_bytes(pl->nodes[c].key, key, keylen))
			return c;
	return -1;
}

/* ---------------------------------------------------------------------
 * The fast path: a validating scanner for the common shape of an event,
 * JSON of ASCII keys and values without escapes, nested up to FAST_MAX_DEPTH.
 * Anything else (escapes, non-ASCII bytes, deeper nesting, more than
 * FAST_MAX_KEYS keys in an object, duplicate keys, any syntax error) makes it
 * give up, and jansson, the reference, decides.  So it never has to classify
 * an error; it must only agree with jansson on documents it accepts, which
 * t/006_parser_differential.pl and the fuzzer check.  Objects the plan has no
 * path into are still scanned whole: a document is valid or not as a whole.
 * ---------------------------------------------------------------------
 */
#define FAST_MAX_KEYS 64
#define FAST_MAX_DEPTH 16

static inline const char *
skip_ws(const char *p, const char *end)
{
	if (p < end && (unsigned char) *p > ' ')
		return p;				/* the common case: no whitespace */
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * The bytes of v (eight of the message, in memory order on a little-endian
 * machine) that end a plain run of a string: a quote, a backslash, a control
 * character (below 0x20) or a non-ASCII byte, as the high bit of each.  (The
 * zero-byte test of "Bit Twiddling Hacks": (x - 0x01..) & ~x & 0x80.. marks
 * the bytes of x that are 0, with 0x20.. those below 0x20; a borrow may also
 * mark bytes after a marked one, never before it, so the first mark is
 * exact.)
 */
static inline uint64
plain_run_ends(uint64 v)
{
	const uint64 ones = UINT64CONST(0x0101010101010101),
				highs = UINT64CONST(0x8080808080808080);
	uint64		quote = v ^ (ones * '"'),
				backslash = v ^ (ones * '\\');

	return (v & highs) |
		((quote - ones) & ~quote & highs) |
		((backslash - ones) & ~backslash & highs) |
		((v - ones * 0x20) & ~v & highs);
}

/* A string without escapes, control characters or non-ASCII bytes. */
static inline const char *
scan_string(const char *p, const char *end, const char **s, size_t *len)
{
	const char *q = ++p;		/* after the opening quote */

#ifdef __SSE2__
	/*
	 * Sixteen bytes at a time (every x86-64 has SSE2): the same test as
	 * plain_run_ends, bytes of 0x80 and up being negative as signed.
	 */
	while (end - q >= 16)
	{
		__m128i		v = _mm_loadu_si128((const __m128i *) q);
		int			ends = _mm_movemask_epi8(_mm_or_si128(
												_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
															 _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
												_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));

		if (ends != 0)
		{
			q += pg_rightmost_one_pos32((uint32) ends);
			if (*q != '"')
				return NULL;
			*s = p;
			*len = q - p;
			return q + 1;
		}
		q += 16;
	}
#endif
#ifndef WORDS_BIGENDIAN
	/*
	 * Eight bytes at a time: the first that ends the run is the quote, or the
	 * string is not plain.  The loop below looks at the last few bytes.
	 */
	while (end - q >= 8)
	{
		uint64		v,
					ends;

		memcpy(&v, q, 8);
		ends = plain_run_ends(v);
		if (ends != 0)
		{
			q += pg_rightmost_one_pos64(ends) / 8;
			if (*q != '"')
				return NULL;
			*s = p;
			*len = q - p;
			return q + 1;
		}
		q += 8;
	}
#endif
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

/*
 * The value of an integer's text: optional '-', then at most 18 digits (so it
 * fits), as strtoll would read it.
 */
static inline int64
integer_value(const char *s, size_t len)
{
	size_t		i = s[0] == '-';
	int64		v = 0;

	for (; i < len; i++)
		v = v * 10 + (s[i] - '0');
	return s[0] == '-' ? -v : v;
}

/*
 * The double nearest a decimal's text, exactly what strtod gives.  The text
 * is a JSON number's, or a numeric string's (scan_number, numeric_string
 * checked it): optional '-', digits, optional '.' and digits, optional
 * exponent; buf is terminated.  Without an exponent and with at most 15
 * digits, the digits as an integer and the power of ten of the fraction are
 * both exact doubles, so one division, correctly rounded by IEEE 754, is the
 * nearest double (Clinger's fast path); anything else goes to strtod.  Only
 * where doubles are computed as doubles (FLT_EVAL_METHOD 0: not x87, whose
 * extended precision rounds twice).
 */
double
event_decimal_value(const char *buf, size_t len)
{
	static const double pow10[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15
	};
	size_t		i = buf[0] == '-';
	int			digits = 0,
				fraction = -1;
	int64		m = 0;

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
	return strtod(buf, NULL);
#endif
	Assert(i < len && buf[i] >= '0' && buf[i] <= '9');
	for (; i < len; i++)
	{
		if (buf[i] == '.')
			fraction = 0;
		else if (buf[i] >= '0' && buf[i] <= '9' && digits < 15)
		{
			m = m * 10 + (buf[i] - '0');
			digits++;
			if (fraction >= 0)
				fraction++;
		}
		else
			return strtod(buf, NULL);	/* an exponent, or too many digits */
	}
	if (fraction < 0)
		fraction = 0;
	return buf[0] == '-' ? -((double) m / pow10[fraction]) : (double) m / pow10[fraction];
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
		f->type = JV_REAL;
		f->d = event_decimal_value(buf, p - start);
		if (!isfinite(f->d))
			return NULL;		/* jansson: overflow error */
	}
	else
	{
		if (p - start > 18)
			return NULL;		/* may not fit: let jansson decide */
		f->type = JV_INTEGER;
		f->i = integer_value(buf, p - start);
		f->d = (double) f->i;
	}
	return p;
}

static const char *fast_value(const char *p, const char *end, const Plan *pl, int node,
							  JsonField *f, JsonField *fields, int depth);

/* *f: a string of the fast path (scan_string takes no control character) */
static inline void
string_field(JsonField *f, const char *str, size_t len)
{
	f->type = JV_STRING;
	f->plain = true;
	f->str = str;
	f->len = len;
	f->i = 0;
	f->d = 0;
}

/*
 * *f: a value of type t without text or number (null, a boolean, an object,
 * an array; or a number, before scan_number sets it)
 */
static inline void
other_field(JsonField *f, JsonType t)
{
	f->type = t;
	f->plain = false;
	f->str = NULL;
	f->len = 0;
	f->i = 0;
	f->d = 0;
}

/* One of 64 bits for a key, from its key_hash. */
static inline uint64
key_bit(uint32 hash)
{
	return UINT64CONST(1) << (hash >> 26);
}

/*
 * An object at p ('{'): its values go into fields where the plan's node has
 * a child for their key.  Returns the position after it, or NULL to give up.
 */
static const char *
fast_object(const char *p, const char *end, const Plan *pl, int node,
			JsonField *fields, int depth)
{
	const char *keys[FAST_MAX_KEYS];
	size_t		keylens[FAST_MAX_KEYS];
	int			nkeys = 0;
	uint64		seen = 0;		/* a bit per key seen (key_bit) */

	if (depth > FAST_MAX_DEPTH)
		return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;)
	{
		const char *key;
		size_t		keylen;
		uint32		hash;
		int			child;
		int			slot;
		JsonField	tmp;

		if (p >= end || *p != '"' || (p = scan_string(p, end, &key, &keylen)) == NULL)
			return NULL;
		hash = key_hash(key, keylen);
		/* a duplicate is possible only if its bit was seen */
		if (seen & key_bit(hash))
			for (int i = 0; i < nkeys; i++)
				if (keylens[i] == keylen && memcmp(keys[i], key, keylen) == 0)
					return NULL;	/* duplicate: jansson rejects */
		seen |= key_bit(hash);
		if (nkeys == FAST_MAX_KEYS)
			return NULL;
		keys[nkeys] = key;
		keylens[nkeys++] = keylen;

		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p = skip_ws(p + 1, end);
		child = plan_child(pl, node, key, keylen, hash);
		slot = child >= 0 ? pl->nodes[child].slot : -1;
		if (p < end && *p == '"')
		{
			/* a string, the common value: scanned here, without a call */
			const char *str;
			size_t		len;

			if ((p = scan_string(p, end, &str, &len)) == NULL)
				return NULL;
			if (slot >= 0)
				string_field(&fields[slot], str, len);
		}
		else if ((p = fast_value(p, end, pl, child, slot >= 0 ? &fields[slot] : &tmp,
								 fields, depth)) == NULL)
			return NULL;
		/* the other fields reading the same path */
		if (slot >= 0)
			for (int f = pl->next_same[slot]; f >= 0; f = pl->next_same[f])
				fields[f] = fields[slot];
		p = skip_ws(p, end);
		if (p < end && *p == ',')
		{
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return p + 1;
		return NULL;
	}
}

/*
 * A value at p, into *f; node: the plan's node for it (-1: none), whose
 * children an object value fills.
 */
static const char *
fast_value(const char *p, const char *end, const Plan *pl, int node, JsonField *f,
		   JsonField *fields, int depth)
{
	if (p >= end)
		return NULL;
	switch (*p)
	{
		case '"':
			{
				const char *str;
				size_t		len;

				if ((p = scan_string(p, end, &str, &len)) != NULL)
					string_field(f, str, len);
				return p;
			}
		case 'n':
			other_field(f, JV_NULL);
			return (end - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;
		case 't':
			other_field(f, JV_OTHER);
			return (end - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;
		case 'f':
			other_field(f, JV_OTHER);
			return (end - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;
		case '{':
			other_field(f, JV_OTHER);
			return fast_object(p, end, pl, node, fields, depth + 1);
		case '[':
			{
				JsonField	tmp;

				other_field(f, JV_OTHER);
				if (depth + 1 > FAST_MAX_DEPTH)
					return NULL;
				p = skip_ws(p + 1, end);
				if (p < end && *p == ']')
					return p + 1;
				for (;;)
				{
					/* elements are never mapped */
					if ((p = fast_value(p, end, pl, -1, &tmp, fields, depth + 1)) == NULL)
						return NULL;
					p = skip_ws(p, end);
					if (p < end && *p == ',')
					{
						p = skip_ws(p + 1, end);
						continue;
					}
					return (p < end && *p == ']') ? p + 1 : NULL;
				}
			}
		default:
			other_field(f, JV_OTHER);	/* (scan_number sets type, i and d) */
			return scan_number(p, end, f);
	}
}

static bool
fast_scan(const char *data, size_t len, const Plan *pl, JsonField *fields)
{
	const char *p = data,
			   *end = data + len;

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return false;
	p = fast_object(p, end, pl, 0, fields, 1);
	return p != NULL && skip_ws(p, end) == end;
}

/* ---------------------------------------------------------------------
 * The reference path: jansson.  Also decides every error.
 * ---------------------------------------------------------------------
 */
static void
jansson_field(json_t *v, JsonField *f)
{
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

/* The plan's fields under node, from the jansson object obj. */
static void
jansson_walk(const Plan *pl, int node, json_t *obj, JsonField *fields)
{
	const PlanNode *n = &pl->nodes[node];

	for (int c = n->first_child; c < n->first_child + n->nchildren; c++)
	{
		const PlanNode *ch = &pl->nodes[c];
		json_t	   *v = json_object_getn(obj, ch->key, ch->keylen);

		for (int f = ch->slot; f >= 0; f = pl->next_same[f])
			jansson_field(v, &fields[f]);
		if (ch->nchildren > 0 && v != NULL && json_is_object(v))
			jansson_walk(pl, c, v, fields);
	}
}

static TaOutcome
jansson_scan(const char *data, size_t len, const Plan *pl, JsonField *fields, json_t **doc,
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
	jansson_walk(pl, 0, root, fields);
	return TA_ACCEPTED;
}

/* ---------------------------------------------------------------------
 * The mapping applied to the fields either parser found
 * ---------------------------------------------------------------------
 */

/* Copy bytes, NUL-terminated, into the event's buffer. */
static const char *
keep_bytes(TaEvent *ev, const char *str, size_t len)
{
	char	   *s = ev->strings + ev->strings_used;

	memcpy(s, str, len);
	s[len] = '\0';
	ev->strings_used += len + 1;
	return s;
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or > U+10FFFF). */
static bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			n;
		uint32		cp;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (len - i <= (size_t) n)
			return false;
		for (int k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
			(cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* v in decimal, as "%lld" prints it, into buf (21 bytes); returns the length. */
static int
format_integer(char *buf, int64 v)
{
	char		digits[20];
	int			n = 0,
				len = 0;
	uint64		u = v < 0 ? -(uint64) v : (uint64) v;

	do
	{
		digits[n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[len++] = '-';
	while (n > 0)
		buf[len++] = digits[--n];
	return len;
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

/*
 * A number in a string ("1767225600.123"): optional '-', digits, optional
 * fraction.  Into *f as a JSON number would be.
 */
static bool
numeric_string(const char *s, size_t len, JsonField *f)
{
	char		buf[64];
	size_t		i = 0;
	bool		real = false;

	if (len == 0 || len >= sizeof(buf))
		return false;
	if (s[i] == '-')
		i++;
	if (i == len || s[i] < '0' || s[i] > '9')
		return false;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i < len && s[i] == '.')
	{
		real = true;
		if (++i == len)
			return false;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i != len)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!real && len <= 18)
	{
		f->type = JV_INTEGER;
		f->i = integer_value(buf, len);
		f->d = (double) f->i;
	}
	else
	{
		f->type = JV_REAL;
		f->d = event_decimal_value(buf, len);
	}
	return true;
}

/* floor(a / b), b > 0 */
static inline int64
floor_div(int64 a, int64 b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* An epoch number in the format's unit (ms per unit: 1000, 1, 1/1000) to ms. */
static bool
epoch_to_ms(const JsonField *f, TaTimeFormat format, int64 *ms)
{
	if (f->type == JV_INTEGER)
	{
		switch (format)
		{
			case TA_TIME_EPOCH_S:
				if (f->i > INT64CONST(253402300799) || f->i < INT64CONST(-62135596800))
					return false;
				*ms = f->i * 1000;
				return true;
			case TA_TIME_EPOCH_US:
				*ms = floor_div(f->i, 1000);
				return true;
			default:
				*ms = f->i;
				return true;
		}
	}
	else
	{
		/* to whole microseconds first (exact for a millisecond fraction of
		 * an epoch in seconds), then down to the millisecond */
		double		us_per_unit = format == TA_TIME_EPOCH_S ? 1e6 : format == TA_TIME_EPOCH_US ? 1 : 1e3;
		double		us = f->d * us_per_unit;

		if (!(us > -3e17 && us < 3e17))
			return false;
		*ms = floor_div((int64) llround(us), 1000);
		return true;
	}
}

static const char *
format_name(TaTimeFormat format)
{
	switch (format)
	{
		case TA_TIME_EPOCH_S:
			return "epoch seconds";
		case TA_TIME_EPOCH_MS:
			return "epoch milliseconds";
		case TA_TIME_EPOCH_US:
			return "epoch microseconds";
		default:
			return "an RFC 3339 date-time";
	}
}

/* The event time from field f of definition d. */
static TaOutcome
apply_time(const TaFieldDef *d, const char *what, const JsonField *f, TaEvent *ev,
		   char *detail, size_t detail_len)
{
	bool		as_string = f->type == JV_STRING;

	if (d->format == TA_TIME_AUTO || d->format == TA_TIME_RFC3339)
	{
		if (d->format == TA_TIME_AUTO && f->type == JV_INTEGER)
		{
			if (!event_time_in_range(f->i))
				REJECT(TA_REJ_BAD_TIMESTAMP, "epoch milliseconds %lld out of range",
					   (long long) f->i);
			ev->ts_ms = f->i;
			return TA_ACCEPTED;
		}
		if (as_string)
		{
			char		buf[64];

			if (f->len >= sizeof(buf) ||
				(!f->plain && memchr(f->str, '\0', f->len) != NULL))
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
			return TA_ACCEPTED;
		}
		if (d->format == TA_TIME_AUTO)
			REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a string or an integer", what);
		REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be an RFC 3339 string", what);
	}
	else
	{
		JsonField	num = *f;

		if (as_string && !numeric_string(f->str, f->len, &num))
			REJECT(TA_REJ_BAD_TIMESTAMP, "\"%.*s\" is not a number of %s",
				   (int) Min(f->len, 64), f->str, format_name(d->format));
		if (num.type != JV_INTEGER && num.type != JV_REAL)
			REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a number or a numeric string (%s)",
				   what, format_name(d->format));
		if (!epoch_to_ms(&num, d->format, &ev->ts_ms) || !event_time_in_range(ev->ts_ms))
			REJECT(TA_REJ_BAD_TIMESTAMP, "%s %.17g out of range",
				   format_name(d->format), num.type == JV_INTEGER ? (double) num.i : num.d);
		return TA_ACCEPTED;
	}
}

/* latency bound (1e12 ms) in the field's unit, as written in the message */
static const char *
latency_bound(int64 unit_us)
{
	return unit_us == 1 ? "1e15" : unit_us == 1000000 ? "1e9" : "1e12";
}

/* One field of the mapping, from what the parser found (value fields). */
static TaOutcome
apply_field(int slot, const TaFieldDef *d, const TaMessage *msg, const JsonField *value,
			TaEvent *ev, char *detail, size_t detail_len)
{
	JsonField	own;			/* the value of a field not from the JSON value */
	const JsonField *fp = value;
	const char *what = d->source == TA_FROM_VALUE ? d->path : d->name;
	bool		raw = false;	/* bytes from Kafka, not a JSON string */

	/* the field's raw value, whatever its source */
	if (d->source != TA_FROM_VALUE)
	{
		memset(&own, 0, sizeof(own));
		fp = &own;
	}
	switch (d->source)
	{
		case TA_FROM_VALUE:
			break;
		case TA_FROM_KEY:
			own.type = msg->key ? JV_STRING : JV_MISSING;
			own.str = msg->key;
			own.len = msg->key_len;
			raw = true;
			break;
		case TA_FROM_TIMESTAMP:
			own.type = msg->timestamp_ms == TA_NO_TIME ? JV_MISSING : JV_INTEGER;
			own.i = msg->timestamp_ms;
			break;
		case TA_FROM_HEADER:
			own.type = JV_MISSING;
			for (int h = 0; h < msg->nheaders; h++)
				if (strcmp(msg->headers[h].name, d->path) == 0)
				{
					own.type = msg->headers[h].value ? JV_STRING : JV_NULL;
					own.str = msg->headers[h].value;
					own.len = msg->headers[h].len;
				}
			raw = true;
			break;
	}

	if (fp->type == JV_MISSING || fp->type == JV_NULL)
	{
		if (d->required || d->role == TA_ROLE_EVENT_TIME)
			REJECT(TA_REJ_MISSING_FIELD, "field \"%s\" is missing", what);
		return TA_ACCEPTED;
	}
	if (raw && !utf8_valid((const unsigned char *) fp->str, fp->len))
		REJECT(TA_REJ_INVALID_UTF8, "%s \"%s\" is not valid UTF-8",
			   d->source == TA_FROM_KEY ? "the message key for field" : "the header for field",
			   d->name);
	/* integers and numbers of a key or header are written as text */
	if (raw && d->type != TA_TYPE_TEXT && d->source != TA_FROM_TIMESTAMP)
	{
		JsonField	num;

		if (numeric_string(fp->str, fp->len, &num))
		{
			own = num;
			fp = &own;
		}
	}

	switch (d->type)
	{
		case TA_TYPE_TIME:
			if (d->source == TA_FROM_TIMESTAMP)
			{
				if (!event_time_in_range(fp->i))
					REJECT(TA_REJ_BAD_TIMESTAMP, "the message timestamp %lld is out of range",
						   (long long) fp->i);
				ev->ts_ms = fp->i;
				return TA_ACCEPTED;
			}
			return apply_time(d, what, fp, ev, detail, detail_len);

		case TA_TYPE_TEXT:
			if (fp->type != JV_STRING)
				REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a string", what);
			if (!fp->plain && memchr(fp->str, '\0', fp->len) != NULL)
				REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" contains a NUL character, which text cannot hold",
					   what);
			ev->field[slot] = keep_bytes(ev, fp->str, fp->len);
			ev->field_len[slot] = (uint32) fp->len;
			break;

		case TA_TYPE_INTEGER:
			{
				char		buf[24];
				int			n;

				if (fp->type != JV_INTEGER)
					REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be an integer", what);
				if (d->role == TA_ROLE_STATUS)
				{
					if (fp->i < 100 || fp->i > 599)
						REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" is %lld, not between 100 and 599",
							   what, (long long) fp->i);
					ev->has_status = true;
					ev->status_code = (int32) fp->i;
				}
				else if (d->role == TA_ROLE_LATENCY)
				{
					if (fp->i < 0 || fp->i > INT64CONST(1000000000000000) / d->unit_us)
						REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" is %lld, not between 0 and %s",
							   what, (long long) fp->i, latency_bound(d->unit_us));
					ev->has_latency = true;
					ev->latency_us = fp->i * d->unit_us;
				}
				if (fp->i >= -TA_MAX_METRIC_VALUE && fp->i <= TA_MAX_METRIC_VALUE)
				{
					ev->has_num[slot] = true;
					ev->num_micro[slot] = fp->i * 1000000;
				}
				n = format_integer(buf, fp->i);
				ev->field[slot] = keep_bytes(ev, buf, n);
				ev->field_len[slot] = (uint32) n;
				break;
			}

		case TA_TYPE_NUMBER:
			if (fp->type != JV_INTEGER && fp->type != JV_REAL)
				REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" must be a number", what);
			if (d->role == TA_ROLE_LATENCY)
			{
				if (!(fp->d >= 0) || fp->d * d->unit_us > 1e15)
					REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" is %g, not between 0 and %s",
						   what, fp->d, latency_bound(d->unit_us));
				ev->has_latency = true;
				ev->latency_us = fp->type == JV_INTEGER ? fp->i * d->unit_us
					: (int64) llround(fp->d * (double) d->unit_us);
			}
			/* as a metric, kept in millionths: exact for up to six decimals */
			if (fp->d >= -(double) TA_MAX_METRIC_VALUE && fp->d <= (double) TA_MAX_METRIC_VALUE)
			{
				ev->has_num[slot] = true;
				ev->num_micro[slot] = fp->type == JV_INTEGER ? fp->i * 1000000
					: (int64) llround(fp->d * 1e6);
			}
			else if (d->role != TA_ROLE_LATENCY)
				REJECT(TA_REJ_WRONG_TYPE, "field \"%s\" is %g, not between -9e12 and 9e12",
					   what, fp->d);
			break;
	}
	if (d->role == TA_ROLE_USER_ID && ev->field[slot] != NULL)
	{
		ev->user_id = ev->field[slot];
		ev->user_id_len = ev->field_len[slot];
	}
	return TA_ACCEPTED;
}

/* The mapping, field by field in slot order (the first problem is reported). */
static TaOutcome
apply_mapping(const TaMapping *map, const Plan *pl, const TaMessage *msg,
			  const JsonField *fields, TaEvent *ev, char *detail, size_t detail_len)
{
	bool		have_time = false;

	for (int u = 0; u < pl->nused; u++)
	{
		int			slot = pl->used[u];
		const TaFieldDef *d = &map->fields[slot];
		TaOutcome	o;

		o = apply_field(slot, d, msg, &fields[slot], ev, detail, detail_len);
		if (o != TA_ACCEPTED)
			return o;
		have_time |= d->role == TA_ROLE_EVENT_TIME;
	}
	if (!have_time)
		REJECT(TA_REJ_MISSING_FIELD, "no field of trafficagg.fields has the role event_time");
	return TA_ACCEPTED;
}

/*
 * Validate one message under a mapping.  On TA_ACCEPTED, *ev is filled (its
 * strings live in ev->strings, valid until the next call or event_free);
 * otherwise detail says what is wrong.  use_fast = false forces the
 * reference parser (tests).
 */
TaOutcome
event_parse_with(const TaMapping *map, const TaMessage *msg, TaEvent *ev, char *detail,
				 size_t detail_len, bool use_fast)
{
	JsonField	fields[TA_MAX_FIELDS];
	json_t	   *doc = NULL;
	TaOutcome	outcome;
	const Plan *pl;
	size_t		need;
	size_t		size;
	static char *strings = NULL;
	static size_t strings_cap = 0;

	memset(ev, 0, sizeof(*ev));
	detail[0] = '\0';

	if (msg->data == NULL || msg->len == 0)
		REJECT(TA_REJ_EMPTY, "message has no value");
	/* the key and headers count: fields may come from them (store.c's bound) */
	size = msg->len + msg->key_len;
	for (int h = 0; h < msg->nheaders; h++)
		size += msg->headers[h].len;
	if (size > (size_t) ta_max_event_bytes)
		REJECT(TA_REJ_TOO_LARGE, size == msg->len
			   ? "message is %zu bytes, trafficagg.max_event_bytes is %d"
			   : "message is %zu bytes with its key and headers, trafficagg.max_event_bytes is %d",
			   size, ta_max_event_bytes);

	/*
	 * Room for every field's text, NUL-terminated: the value's strings once,
	 * again for each field sharing a path with another, the key and the
	 * headers once for each field reading them, and a number's digits.
	 */
	pl = plan_for(map);
	{
		size_t		headers = 0;

		for (int h = 0; h < msg->nheaders; h++)
			headers += msg->headers[h].len;
		need = msg->len * (1 + pl->copies) + msg->key_len * pl->from_key +
			headers * pl->from_header + TA_MAX_FIELDS * 24 + 1;
	}
	if (strings_cap < need)
	{
		strings_cap = Max(need, 4096);
		free(strings);
		strings = malloc(strings_cap);
		if (strings == NULL)
		{
			/* a fault of this server, not of the message: not a rejection */
			strings_cap = 0;
#ifdef TA_STANDALONE_PARSER
			fprintf(stderr, "out of memory for a %zu-byte message\n", need);
			abort();
#else
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Failed on request of size %zu in the trafficagg event parser.",
							   need)));
#endif
		}
	}
	ev->strings = strings;
	ev->strings_used = 0;

	/* (the scans fill, and apply_mapping reads, only the fields in use) */
	for (int u = 0; u < pl->nused; u++)
		fields[pl->used[u]].type = JV_MISSING;
	if (use_fast && fast_scan(msg->data, msg->len, pl, fields))
		outcome = apply_mapping(map, pl, msg, fields, ev, detail, detail_len);
	else
	{
		for (int u = 0; u < pl->nused; u++)
			fields[pl->used[u]].type = JV_MISSING;
		outcome = jansson_scan(msg->data, msg->len, pl, fields, &doc, detail, detail_len);
		if (outcome == TA_ACCEPTED)
			outcome = apply_mapping(map, pl, msg, fields, ev, detail, detail_len);
		if (doc)
			json_decref(doc);
	}
	return outcome;
}

TaOutcome
event_parse(const TaMapping *map, const TaMessage *msg, TaEvent *ev, char *detail,
			size_t detail_len)
{
	return event_parse_with(map, msg, ev, detail, detail_len, true);
}

void
event_free(TaEvent *ev)
{
	/* the strings live in a buffer reused by the next event_parse */
	ev->strings = NULL;
}
