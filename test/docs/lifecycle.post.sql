DROP SCHEMA app CASCADE;
DROP OWNED BY regress_lifecycle_app_user;
DROP ROLE regress_lifecycle_app_user;
