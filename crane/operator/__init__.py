"""The Kubernetes operator: thin kopf handlers feed a cache; one scheduling loop decides and acts."""
