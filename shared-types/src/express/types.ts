import type { Actor } from '../claims.ts';
import type { ApiError } from '../errors.ts';

declare global {
  namespace Express {
    interface Request {
      /** request id (client's when well formed, else generated) */
      requestId: string;
      /** verified acting user: from signed gateway headers, or from the bearer token on service calls */
      actor?: Actor;
      /** raw access token, on service-to-service calls made on a user's behalf */
      userToken?: string;
      /** why a presented user token was refused (service calls), reported when a route needs the user */
      authError?: ApiError;
      /** calling service, on /internal routes */
      caller?: string;
    }
  }
}
