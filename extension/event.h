/*-------------------------------------------------------------------------
 *
 * event.h
 *	  Events: the fields, the outcomes of a message, the parser (event.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_EVENT_H
#define TRAFFICAGG_EVENT_H

/* The fields an aggregate may group by, in the order of event.c's table. */
typedef enum TaField
{
	TA_F_EVENT_TYPE,
	TA_F_PAGE,
	TA_F_USER_ID,
	TA_F_SESSION_ID,
	TA_F_COUNTRY,
	TA_F_DEVICE,
	TA_F_REFERRER,
	TA_F_STATUS_CODE,
	TA_NUM_FIELDS
} TaField;

/* What happened to one message.  Every consumed message gets exactly one. */
typedef enum TaOutcome
{
	TA_ACCEPTED,
	TA_LATE,
	TA_REJ_EMPTY,
	TA_REJ_TOO_LARGE,
	TA_REJ_INVALID_UTF8,
	TA_REJ_NOT_JSON,
	TA_REJ_NOT_OBJECT,
	TA_REJ_MISSING_FIELD,
	TA_REJ_WRONG_TYPE,
	TA_REJ_BAD_TIMESTAMP,
	TA_REJ_VALUE_TOO_LONG,
	TA_REJ_FUTURE_TIMESTAMP,
	TA_NUM_OUTCOMES
} TaOutcome;

/* A validated event.  String fields point into parser-owned memory. */
typedef struct TaEvent
{
	int64		ts_ms;			/* event time, ms since the Unix epoch */
	const char *field[TA_NUM_FIELDS];	/* NULL when absent */
	bool		has_status;
	int32		status_code;
	bool		has_latency;
	int64		latency_us;		/* response_time_ms in microseconds */
	char	   *strings;		/* the field strings, NUL-terminated */
	size_t		strings_used;
	char		status_text[12];	/* field[TA_F_STATUS_CODE] points here */
} TaEvent;

extern TaOutcome event_parse(const char *data, size_t len, TaEvent *ev,
							 char *detail, size_t detail_len);
extern TaOutcome event_parse_with(const char *data, size_t len, TaEvent *ev,
								  char *detail, size_t detail_len, bool use_fast);
extern void event_free(TaEvent *ev);
extern const char *outcome_name(TaOutcome outcome);
extern const char *field_name(TaField field);
extern int	field_by_name(const char *name);
extern bool parse_rfc3339(const char *s, int64 *ms);
extern char *format_rfc3339(int64 ms, char *buf, size_t len);

#endif							/* TRAFFICAGG_EVENT_H */
