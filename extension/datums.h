/*-------------------------------------------------------------------------
 *
 * datums.h
 *	  SQL datums of the worker's values (datums.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_DATUMS_H
#define TRAFFICAGG_DATUMS_H

extern Datum ta_us_to_numeric(int64 us);
extern Datum ta_us_sum_to_numeric(int128 us);
extern Datum ta_micro_to_numeric(int128 v);
extern Datum ta_datum_array(Datum *values, bool *nulls, int n, Oid type);

#endif							/* TRAFFICAGG_DATUMS_H */
