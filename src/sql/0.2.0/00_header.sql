/*
 * tenant_guard 0.1.0 -> 0.2.0. Each file in src/sql/0.2.0/ holds one
 * feature's objects; the Makefile concatenates them in file-name order into
 * tenant_guard--0.1.0--0.2.0.sql. Same conventions as the 0.1.0 script:
 * everything schema-qualified, volatility/strictness/parallel safety declared,
 * SECURITY DEFINER functions pin search_path, internal functions start with
 * "_" and everything is revoked from PUBLIC unless granted on purpose.
 */
