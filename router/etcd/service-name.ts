// The service-name grammar of `/services/<service>/` keys and route rules. Its
// own module so that route-keys.ts and policy-fields.ts share it without
// importing each other.
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
