"""The Kubernetes operator: thin kopf handlers feed a cache; one loop decides and acts."""
