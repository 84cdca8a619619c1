// REST calls with the API key; every failure becomes an ApiError carrying the API's error body.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || null;
    this.details = error?.details || null;
    this.projectError = Boolean(error?.code); // false: an answer of the gateway, not of the API
  }

  // A route this server does not have yet: API Gateway (and Chalice's local gateway) answers
  // 403 "Missing Authentication Token" or 404 with its own body, not the API's error shape.
  get routeMissing() {
    return [403, 404, 405].includes(this.status) && !this.projectError;
  }
}

export class Api {
  constructor(apiKey) {
    this.apiKey = apiKey;
  }

  url(path) {
    return new URL(path, document.baseURI);
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.apiKey}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, { message: "the server cannot be reached" });
    }
    let answer = null;
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      answer = await response.json().catch(() => null);
    }
    if (!response.ok) throw new ApiError(response.status, answer?.error || answer);
    return answer;
  }

  get(path, params) {
    const query = params ? `?${new URLSearchParams(params)}` : "";
    return this.request("GET", `${path}${query}`);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }
}
