import "./style.css";
import { createApi } from "./api";
import { mount } from "./view";

// Same-origin by default: server.mjs proxies /api to the backend. A build can
// point elsewhere with VITE_API_BASE (e.g. VITE_API_BASE=http://localhost:8000).
const base: string = (import.meta.env.VITE_API_BASE as string | undefined) ?? "/api";
mount(document, createApi(base));
