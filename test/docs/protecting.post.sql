DROP SCHEMA app CASCADE;
DROP OWNED BY regress_protecting_app_user, regress_protecting_migrator;
DROP ROLE regress_protecting_app_user, regress_protecting_migrator;
