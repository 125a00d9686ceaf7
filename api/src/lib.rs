//! OpenKruise (`apps.kruise.io`, `policy.kruise.io`) and federation (`federation.kruise.io`) API types.
