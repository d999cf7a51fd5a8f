/*
 * trafficagg 0.4.0 -> 0.5.0: dimension_key() is inlined.
 *  - dimension_key() is no longer STRICT.  A STRICT SQL function whose body
 *    is not strict (a CASE) is never inlined by the planner, so every entry
 *    of an aggregate table's unique index, and every ON CONFLICT check of a
 *    flush, ran the SQL-function executor once per row and dimension.  The
 *    body is unchanged and gives NULL for NULL as before (every function and
 *    operator of its ELSE branch is strict), so each key is the same and the
 *    indexes stay valid: no REINDEX.
 *  - Each index on dimension_key() is invalidated in every session's cache.
 *    A session keeps an index's expressions as it first read them, planned
 *    with the function as it was; a flush planned after the update would
 *    name the inlined expression in its ON CONFLICT and no longer match that
 *    form ("there is no unique or exclusion constraint matching the ON
 *    CONFLICT specification").  Setting the statistics target of the index's
 *    first expression column to what it is changes nothing but sends the
 *    invalidation; the table is locked so that no session has the index open
 *    when it reads the invalidation (an open index keeps its expressions).
 */
\echo Use "ALTER EXTENSION trafficagg UPDATE TO '0.5.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION @extschema@.dimension_key(v text) RETURNS text
LANGUAGE sql IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
RETURN CASE WHEN pg_catalog.octet_length(v) OPERATOR(pg_catalog.<=) 64 THEN v
            ELSE 'sha256:' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256(
                     pg_catalog.decode(pg_catalog.replace(v, E'\\', E'\\\\'), 'escape')), 'hex')
       END;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT i.indrelid::pg_catalog.regclass AS tab, i.indexrelid::pg_catalog.regclass AS idx,
                    a.attnum, a.attstattarget
               FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
               JOIN LATERAL (SELECT attnum, attstattarget FROM pg_catalog.pg_attribute
                              WHERE attrelid OPERATOR(pg_catalog.=) i.indexrelid
                                AND attnum OPERATOR(pg_catalog.>) 0
                                AND i.indkey[attnum OPERATOR(pg_catalog.-) 1] OPERATOR(pg_catalog.=) 0
                              ORDER BY attnum LIMIT 1) a ON true
              WHERE i.indexrelid IN
                    (SELECT objid FROM pg_catalog.pg_depend
                      WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                        AND refobjid OPERATOR(pg_catalog.=)
                            '@extschema@.dimension_key(text)'::pg_catalog.regprocedure)
              -- the tables in the order a flush writes them, as far as it can
              -- be told (a deadlock with a flush would abort one of the two)
              ORDER BY (SELECT g.created_at FROM @extschema@.aggregates g
                         WHERE g.name OPERATOR(pg_catalog.=) c.relname
                           AND c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace),
                       c.relname, i.indexrelid LOOP
        EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r.tab);
        -- (the default target is -1 before PostgreSQL 17, NULL since)
        EXECUTE pg_catalog.format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s',
                                  r.idx, r.attnum, coalesce(r.attstattarget::pg_catalog.int4, -1));
    END LOOP;
END;
$$;
