/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Differences between the PostgreSQL major versions trafficagg builds
 *	  against (15 to 18), in one place.  Included by trafficagg.h right after
 *	  postgres.h.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_COMPAT_H
#define TRAFFICAGG_COMPAT_H

/*
 * 16 moved the varlena macros (VARDATA, SET_VARSIZE, VARSIZE_ANY_EXHDR, ...)
 * out of postgres.h into varatt.h.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

#endif							/* TRAFFICAGG_COMPAT_H */
