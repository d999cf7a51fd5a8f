/*
 * parse_diff.c
 *	  Differential fuzzer for extension/event.c: the fast scanner against
 *	  jansson, the reference.  Seeds (valid events and every kind of bad
 *	  message) are mutated at random; for each input both paths must give
 *	  the same outcome, the same detail text and the same extracted event.
 *
 *	  Also: event_decimal_value() (the scanner's number reading) against
 *	  strtod, bit for bit, over random decimals of every length and shape.
 *
 *	  parse_diff ITERATIONS [SEED]   exit 0 if no difference, 1 otherwise
 */
#include "../extension/trafficagg.h"
#include "../extension/event.h"
#include "nested_mapping.h"

#include <stdio.h>
#include <stdlib.h>

int			ta_max_event_bytes = 4096;

static const char *const seeds[] = {
	"{\"event_id\":\"e1\",\"event_type\":\"page_view\",\"user_id\":\"u000123\",\"session_id\":\"s1\","
	"\"page\":\"/products/12\",\"referrer\":\"https://www.google.com/\",\"country\":\"DE\","
	"\"device\":\"mobile\",\"status_code\":200,\"response_time_ms\":81.234,"
	"\"timestamp\":\"2026-01-01T00:00:00.010Z\"}",
	"{ \"timestamp\" : 1767225600123 , \"event_type\" : \"click\" , \"page\" : \"/\" ,"
	" \"status_code\" : 503 , \"response_time_ms\" : 12 }",
	"{\"timestamp\":\"2026-01-01T05:30:00.010+05:30\",\"event_type\":\"x\",\"page\":\"\","
	"\"user_id\":null,\"extra\":true,\"more\":false,\"n\":-0.5e-3}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\",\"nested\":{\"a\":[1,2]}}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\\u00e9\\n\"}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/caf\xc3\xa9\"}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\",\"page\":\"/2\"}",
	"{\"timestamp\":\"yesterday\",\"event_type\":\"x\",\"page\":\"/\"}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":7}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\",\"status_code\":200.0}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\",\"response_time_ms\":-1}",
	"{\"event_type\":\"x\",\"page\":\"/\"}",
	"[1,2]", "42", "\"s\"", "{oops", "{}", " {\"a\":1} ", "{\"timestamp\":99999999999999999999}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\",\"status_code\":1e2}",
	/* the nested shape */
	"{\"ts\": 1767225600123, \"request\": {\"url\": \"/p?utm_source=news&x=1\", \"status\": 503,"
	" \"duration_us\": 1234}, \"geo\": {\"country\": \"DE\", \"region\": {\"name\": \"BY\"}},"
	" \"visitor\": \"v-17\", \"order\": {\"total\": 19.99}, \"type\": \"purchase\", \"tags\": [1, {\"a\": []}]}",
	"{\"ts\":1767225600123,\"request\":{\"url\":\"/\",\"status\":200,\"duration_us\":12.5},\"geo\":null}",
	"{\"ts\":1767225600123,\"request\":\"/\",\"geo\":{\"country\":7}}",
	"{\"ts\":1767225600123,\"request\":{\"url\":\"/\",\"url\":\"/2\"}}",
	"{\"ts\":\"1767225600123\",\"request\":{\"url\":\"/\\u00e9\",\"status\":99}}",
	/* keys named like a mapped key under another object: not that field */
	"{\"ts\":1767225600123,\"url\":\"/top\",\"status\":1,\"name\":\"n\",\"total\":5,"
	"\"request\":{\"url\":\"/r\",\"country\":\"XX\",\"region\":{\"name\":\"R\"}},"
	"\"geo\":{\"url\":\"/g\",\"name\":\"G\",\"total\":3,\"region\":{\"country\":\"YY\"}}}",
	"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"x\",\"page\":\"/\","
	"\"nested\":{\"page\":\"/inner\",\"country\":\"ZZ\",\"timestamp\":\"bad\"},\"device\":\"d\"}",
	"{\"ts\":1767225600123,\"request\":{\"url\":\"/\"},\"deep\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
};

static const char alphabet[] = "{}[]\",:\\ 0123456789.eE+-tnfalsru\x80\xc3\xff\x01Z";

static unsigned long long rng;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned) (rng % n);
}

static bool
same_event(const TaEvent *a, const TaEvent *b)
{
	if (a->ts_ms != b->ts_ms || a->has_status != b->has_status ||
		a->has_latency != b->has_latency ||
		(a->has_status && a->status_code != b->status_code) ||
		(a->has_latency && a->latency_us != b->latency_us) ||
		(a->user_id == NULL) != (b->user_id == NULL) ||
		(a->user_id && (a->user_id_len != b->user_id_len ||
						memcmp(a->user_id, b->user_id, a->user_id_len) != 0)))
		return false;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (a->has_num[f] != b->has_num[f] || (a->has_num[f] && a->num_micro[f] != b->num_micro[f]))
			return false;
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if ((a->field[f] == NULL) != (b->field[f] == NULL) ||
			(a->field[f] && (a->field_len[f] != b->field_len[f] ||
							 memcmp(a->field[f], b->field[f], a->field_len[f]) != 0)))
			return false;
	return true;
}

/* A copy of an event whose strings survive the parser's next call. */
static void
keep_event(const TaEvent *ev, TaEvent *out, char *strings)
{
	*out = *ev;
	memcpy(strings, ev->strings, ev->strings_used);
	for (int f = 0; f < TA_MAX_FIELDS; f++)
		if (ev->field[f])
			out->field[f] = strings + (ev->field[f] - ev->strings);
	if (ev->user_id)
		out->user_id = strings + (ev->user_id - ev->strings);
}

/*
 * Random decimals ("-0.0071", "123456789012345.6", "1e-7", 0 to 19 digits
 * with a point anywhere): event_decimal_value must equal strtod, bit for bit.
 * Returns the number of differences.
 */
static long
check_decimals(long n)
{
	long		differences = 0;

	for (long it = 0; it < n; it++)
	{
		char		s[64];
		int			len = 0,
					digits = 1 + rnd(19),
					point = rnd(digits + 1);
		double		a,
					b;

		if (rnd(2))
			s[len++] = '-';
		for (int d = 0; d < digits; d++)
		{
			if (d == point && d > 0)
				s[len++] = '.';
			/* leading zeros, nines and runs of one digit find rounding edges */
			s[len++] = "0123456789099990000050000"[rnd(25)];
		}
		if (rnd(16) == 0)
			len += sprintf(s + len, "e%d", (int) rnd(40) - 20);
		s[len] = '\0';
		a = event_decimal_value(s, len);
		b = strtod(s, NULL);
		if (memcmp(&a, &b, sizeof(double)) != 0)
		{
			differences++;
			if (differences <= 10)
				printf("decimal difference on %s: %.17g vs strtod %.17g\n", s, a, b);
		}
	}
	printf("%ld decimals, %ld differences from strtod\n", n, differences);
	return differences;
}

int
main(int argc, char **argv)
{
	long		iterations = argc > 1 ? atol(argv[1]) : 100000;
	long		differences = 0,
				accepted = 0;
	char		buf[8192];

	rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 88172645463325252ULL;
	if (rng == 0)
		rng = 1;
	differences += check_decimals(iterations);
	for (long it = 0; it < iterations; it++)
	{
		const char *seed = seeds[rnd(sizeof(seeds) / sizeof(seeds[0]))];
		size_t		len = strlen(seed);
		int			nmut = it < (long) (sizeof(seeds) / sizeof(seeds[0])) ? 0 : 1 + rnd(4);
		TaEvent		a,
					b;
		char		da[TA_DETAIL_LEN],
					db[TA_DETAIL_LEN];
		TaOutcome	oa,
					ob;
		/* copies of the fast path's strings: the buffer is reused */
		TaEvent		keep = {0};
		char		strings[8192];

		memcpy(buf, seed, len);
		for (int m = 0; m < nmut; m++)
		{
			size_t		pos = len ? rnd(len + 1) : 0;

			switch (rnd(3))
			{
				case 0:			/* replace */
					if (len && pos < len)
						buf[pos] = alphabet[rnd(sizeof(alphabet) - 1)];
					break;
				case 1:			/* insert */
					if (len + 1 < sizeof(buf))
					{
						memmove(buf + pos + 1, buf + pos, len - pos);
						buf[pos] = alphabet[rnd(sizeof(alphabet) - 1)];
						len++;
					}
					break;
				default:		/* delete */
					if (len && pos < len)
					{
						memmove(buf + pos, buf + pos + 1, len - pos - 1);
						len--;
					}
					break;
			}
		}

		for (int mi = 0; mi < 2; mi++)
		{
			const TaMapping *map = mi == 0 ? mapping_default() : nested_mapping();
			TaMessage	msg = {.data = buf, .len = len, .timestamp_ms = TA_NO_TIME};

			oa = event_parse_with(map, &msg, &a, da, sizeof(da), true);
			if (oa == TA_ACCEPTED)
				keep_event(&a, &keep, strings);
			ob = event_parse_with(map, &msg, &b, db, sizeof(db), false);
			if (oa == TA_ACCEPTED)
				accepted++;
			if (oa != ob || strcmp(da, db) != 0 || (oa == TA_ACCEPTED && !same_event(&keep, &b)))
			{
				differences++;
				if (differences <= 10)
					printf("difference (%s mapping): fast %s (%s) vs jansson %s (%s) on: %.*s\n",
						   mi == 0 ? "default" : "nested",
						   outcome_name(oa), da, outcome_name(ob), db, (int) len, buf);
			}
		}
	}
	printf("%ld inputs, %ld accepted, %ld differences\n", iterations, accepted, differences);
	return differences == 0 ? 0 : 1;
}
