/*-------------------------------------------------------------------------
 *
 * datums.c
 *	  The worker's values as SQL datums: microseconds as exact numerics of
 *	  milliseconds, arrays of parameters for the statements that write rows
 *	  (flush.c) and offsets (recovery.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "datums.h"


/* Build a one-dimensional array of n Datums (nulls may be NULL). */
Datum
ta_datum_array(Datum *values, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/*
 * Microseconds as an exact numeric of milliseconds (3 decimals): the value,
 * and the display scale, numeric_in gives for its text ("12.340").
 */
Datum
ta_us_to_numeric(int64 us)
{
	return NumericGetDatum(int64_div_fast_to_numeric(us, 3));
}

/* A sum of microseconds as an exact numeric of milliseconds. */
Datum
ta_us_sum_to_numeric(int128 us)
{
	char		buf[48];
	char	   *p = buf + sizeof(buf);
	bool		neg = us < 0;
	uint128		u = neg ? -(uint128) us : (uint128) us;
	int			digits = 0;

	if (us >= PG_INT64_MIN && us <= PG_INT64_MAX)
		return ta_us_to_numeric((int64) us);
	*--p = '\0';
	do
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
		if (++digits == 3)
			*--p = '.';
	} while (u > 0 || digits < 4);
	if (neg)
		*--p = '-';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(p),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * Millionths (a metric field's sum, minimum or maximum) as an exact numeric,
 * trailing zeros of the fraction left out: 19990000 is 19.99.
 */
Datum
ta_micro_to_numeric(int128 v)
{
	char		buf[56];
	char	   *p = buf + sizeof(buf);
	bool		neg = v < 0;
	uint128		u = neg ? -(uint128) v : (uint128) v;
	int			digits = 0;
	bool		in_fraction_zeros = true;

	/* as numeric_in gives for the text below: a scale of its decimals kept */
	if (v >= PG_INT64_MIN && v <= PG_INT64_MAX)
	{
		int64		w = (int64) v;
		int			scale = 6;

		while (scale > 0 && w % 10 == 0)
		{
			w /= 10;
			scale--;
		}
		return NumericGetDatum(int64_div_fast_to_numeric(w, scale));
	}
	*--p = '\0';
	do
	{
		int			d = (int) (u % 10);

		u /= 10;
		digits++;
		if (digits <= 6 && in_fraction_zeros && d == 0)
			;					/* a trailing zero of the fraction */
		else
		{
			in_fraction_zeros = false;
			*--p = '0' + d;
		}
		if (digits == 6 && !in_fraction_zeros)
			*--p = '.';
	} while (u > 0 || digits < 7);
	if (neg)
		*--p = '-';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(p),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}
