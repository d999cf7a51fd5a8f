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

/* Microseconds as an exact numeric of milliseconds (3 decimals). */
Datum
ta_us_to_numeric(int64 us)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%s" INT64_FORMAT ".%03d", us < 0 ? "-" : "",
			 (us < 0 ? -us : us) / 1000, (int) ((us < 0 ? -us : us) % 1000));
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
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
