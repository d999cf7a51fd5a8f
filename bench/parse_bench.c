/*
 * parse_bench.c
 *	  Benchmark (b): the cost of trafficagg's parser/validator alone
 *	  (extension/event.c, linked in as it is) over the payloads of a file,
 *	  one message per line.
 *
 *	  parse_bench FILE [ROUNDS [nested]]
 *
 *	  nested: under the mapping of the README's nested example
 *	  (test/nested_mapping.h), for a file the producer wrote with
 *	  --schema nested; else under the default mapping.
 *
 *	  Prints one JSON object: messages, accepted, rounds, seconds,
 *	  messages_per_s (one core), ns_per_message.
 */
#include "../extension/trafficagg.h"
#include "../extension/event.h"
#include "../test/nested_mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* the one setting event.c reads */
int			ta_max_event_bytes = 65536;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *buf = NULL;
	size_t		cap = 0,
				total = 0;
	size_t	   *starts = NULL;
	size_t		n = 0,
				ncap = 0;
	int			rounds = argc > 2 ? atoi(argv[2]) : 5;
	const TaMapping *map = argc > 3 && strcmp(argv[3], "nested") == 0
		? nested_mapping() : mapping_default();
	long		accepted = 0;
	double		t0,
				t1;

	if (argc < 2 || (f = fopen(argv[1], "rb")) == NULL)
	{
		fprintf(stderr, "usage: %s FILE [ROUNDS [nested]]\n", argv[0]);
		return 2;
	}
	for (;;)
	{
		size_t		r;

		if (total + 65536 > cap)
			buf = realloc(buf, cap = (cap + 65536) * 2);
		r = fread(buf + total, 1, cap - total, f);
		if (r == 0)
			break;
		total += r;
	}
	fclose(f);
	for (size_t i = 0, s = 0; i < total; i++)
		if (buf[i] == '\n')
		{
			if (n + 1 >= ncap)
				starts = realloc(starts, (ncap = ncap * 2 + 1024) * sizeof(size_t));
			starts[n++] = s;
			buf[i] = '\0';
			s = i + 1;
		}

	t0 = now();
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < n; i++)
		{
			TaEvent		ev;
			char		detail[TA_DETAIL_LEN];
			size_t		len = strlen(buf + starts[i]);

			TaMessage	msg = {.data = buf + starts[i], .len = len, .timestamp_ms = TA_NO_TIME};

			if (event_parse(map, &msg, &ev, detail, sizeof(detail)) == TA_ACCEPTED)
			{
				accepted++;
				event_free(&ev);
			}
		}
	t1 = now();
	printf("{\"messages\": %zu, \"accepted\": %ld, \"rounds\": %d, \"seconds\": %.3f, "
		   "\"messages_per_s\": %.0f, \"ns_per_message\": %.0f}\n",
		   n, accepted / rounds, rounds, t1 - t0,
		   n * rounds / (t1 - t0), (t1 - t0) * 1e9 / (n * (double) rounds));
	return 0;
}
