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

/*
 * The field mapping: which part of a message gives each field.  It is data
 * (trafficagg.fields, copied into shared memory by catalog.c); event.c
 * applies it.  A field keeps its slot while it exists, so slots identify
 * fields for aggregates' dimensions.
 */
#define TA_MAX_FIELDS			32	/* fields of the mapping */
#define TA_MAX_PATH_LEN			128 /* bytes of a field's path, with NUL */
#define TA_MAX_PATH_DEPTH		8	/* segments of a path */
#define TA_MAX_METRIC_VALUE		INT64CONST(9000000000000)	/* |number fields| */

typedef enum TaFieldSource
{
	TA_FROM_VALUE,				/* a path into the JSON value */
	TA_FROM_KEY,				/* the Kafka message's key */
	TA_FROM_TIMESTAMP,			/* the Kafka message's timestamp */
	TA_FROM_HEADER				/* a Kafka header, named by path */
} TaFieldSource;

typedef enum TaFieldType
{
	TA_TYPE_TEXT,				/* a JSON string */
	TA_TYPE_INTEGER,			/* a JSON integer */
	TA_TYPE_NUMBER,				/* a JSON number */
	TA_TYPE_TIME				/* an event time, in the field's format */
} TaFieldType;

/* What the data path does with a field besides grouping by it. */
typedef enum TaFieldRole
{
	TA_ROLE_NONE,
	TA_ROLE_EVENT_TIME,			/* the event time: windows, watermark */
	TA_ROLE_USER_ID,			/* unique users */
	TA_ROLE_LATENCY,			/* latency metrics */
	TA_ROLE_STATUS,				/* errors (>= 500), client errors (4xx) */
	TA_NUM_ROLES
} TaFieldRole;

typedef enum TaTimeFormat
{
	TA_TIME_AUTO,				/* RFC 3339 string or integer epoch ms */
	TA_TIME_RFC3339,
	TA_TIME_EPOCH_S,			/* number or numeric string */
	TA_TIME_EPOCH_MS,
	TA_TIME_EPOCH_US
} TaTimeFormat;

typedef struct TaFieldDef
{
	bool		in_use;
	char		name[NAMEDATALEN];
	TaFieldSource source;
	char		path[TA_MAX_PATH_LEN];	/* value: dotted path; header: name */
	TaFieldType type;
	bool		required;
	TaFieldRole role;
	TaTimeFormat format;		/* TA_TYPE_TIME */
	int64		unit_us;		/* latency: microseconds per unit */
} TaFieldDef;

typedef struct TaMapping
{
	uint32		version;		/* changes whenever the mapping does */
	TaFieldDef	fields[TA_MAX_FIELDS];	/* by slot */
} TaMapping;

/* A Kafka header, as consume.c hands it over. */
typedef struct TaHeader
{
	const char *name;
	const char *value;			/* NULL: a header without a value */
	size_t		len;
} TaHeader;

/* One message: its value and, from Kafka, its key, timestamp and headers. */
typedef struct TaMessage
{
	const char *data;
	size_t		len;
	const char *key;			/* NULL: none (or the SQL path) */
	size_t		key_len;
	int64		timestamp_ms;	/* TA_NO_TIME: none */
	int			nheaders;
	const TaHeader *headers;
} TaMessage;

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
	TA_REJ_VALUE_TOO_LONG,		/* no longer produced (values of any length are
								 * accepted); kept for old dead letters */
	TA_REJ_FUTURE_TIMESTAMP,
	TA_NUM_OUTCOMES
} TaOutcome;

/* A validated event.  String fields point into parser-owned memory. */
typedef struct TaEvent
{
	int64		ts_ms;			/* event time, ms since the Unix epoch */
	const char *field[TA_MAX_FIELDS];	/* text of each text or integer field
										 * by slot, NUL-terminated; NULL when
										 * absent */
	uint32		field_len[TA_MAX_FIELDS];	/* their lengths */
	const char *user_id;		/* the user id role's field, or NULL */
	uint32		user_id_len;
	bool		has_status;
	int32		status_code;
	bool		has_latency;
	int64		latency_us;		/* the latency role's field in microseconds */
	bool		has_num[TA_MAX_FIELDS]; /* integer and number fields ... */
	int64		num_micro[TA_MAX_FIELDS];	/* ... in millionths (metrics) */
	char	   *strings;		/* the field strings, NUL-terminated */
	size_t		strings_used;
} TaEvent;

extern TaOutcome event_parse(const TaMapping *map, const TaMessage *msg, TaEvent *ev,
							 char *detail, size_t detail_len);
extern TaOutcome event_parse_with(const TaMapping *map, const TaMessage *msg, TaEvent *ev,
								  char *detail, size_t detail_len, bool use_fast);
extern void event_free(TaEvent *ev);
extern const char *outcome_name(TaOutcome outcome);
extern const TaMapping *mapping_default(void);
extern bool mapping_uses_headers(const TaMapping *map);
extern int	mapping_find(const TaMapping *map, const char *name);
extern bool parse_rfc3339(const char *s, int64 *ms);
extern double event_decimal_value(const char *buf, size_t len);
extern char *format_rfc3339(int64 ms, char *buf, size_t len);

#endif							/* TRAFFICAGG_EVENT_H */
