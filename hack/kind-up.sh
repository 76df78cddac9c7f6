#!/usr/bin/env bash
# A local cluster for users with Docker: kind + ingress-nginx + kube-prometheus-stack
# (Prometheus, Grafana with the dashboard sidecar, the Prometheus Operator CRDs) + PostgreSQL,
# and rollguard built from this checkout and installed from charts/rollguard.
# (The project's own tests do not need this: they run on a node-less local control plane.)
#
#   hack/kind-up.sh            create (or reuse) the cluster and install everything
#   hack/kind-up.sh --delete   delete the cluster
#   hack/kind-up.sh --help
#
# Environment: CLUSTER (rollguard), KIND_NODE_IMAGE (kind's default), IMAGE (rollguard:dev),
# INGRESS_NGINX_VERSION / KPS_VERSION (chart versions; latest when empty), HELM (a helm binary;
# default: helm on PATH, else one built by hack/build-helm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-rollguard}"
IMAGE="${IMAGE:-rollguard:dev}"
NS=rollguard
log() { printf '[kind-up] %s\n' "$*" >&2; }

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --delete) kind delete cluster --name "$CLUSTER"; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { log "$tool is required (this script is for machines with Docker)"; exit 1; }
done
HELM="${HELM:-$(command -v helm || bash hack/build-helm.sh)}"
T0=$SECONDS

# 1. The cluster; ports 80/443 of the node reach ingress-nginx (kind's documented setup).
if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          kubeletExtraArgs:
            node-labels: "ingress-ready=true"
    extraPortMappings:
      - {containerPort: 80, hostPort: 80, protocol: TCP}
      - {containerPort: 443, hostPort: 443, protocol: TCP}
KIND
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

# 2. ingress-nginx: the nginx TrafficRouter shifts canary weight with its canary annotations.
log "installing ingress-nginx"
"$HELM" upgrade --install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx \
  ${INGRESS_NGINX_VERSION:+--version "$INGRESS_NGINX_VERSION"} -n ingress-nginx --create-namespace \
  --set controller.hostPort.enabled=true --set controller.service.type=NodePort \
  --set controller.nodeSelector.ingress-ready=true \
  --set 'controller.tolerations[0].key=node-role.kubernetes.io/control-plane' \
  --set 'controller.tolerations[0].operator=Exists' --set 'controller.tolerations[0].effect=NoSchedule' \
  --set controller.metrics.enabled=true --set controller.metrics.serviceMonitor.enabled=false \
  --wait --timeout 5m

# 3. Prometheus + Grafana: select every ServiceMonitor/PrometheusRule, load labelled dashboards.
log "installing kube-prometheus-stack"
"$HELM" upgrade --install kps kube-prometheus-stack --repo https://prometheus-community.github.io/helm-charts \
  ${KPS_VERSION:+--version "$KPS_VERSION"} -n monitoring --create-namespace \
  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
  --set grafana.sidecar.dashboards.enabled=true --set grafana.sidecar.dashboards.searchNamespace=ALL \
  --set alertmanager.enabled=false --wait --timeout 10m
# Now that the ServiceMonitor exists, scrape ingress-nginx too (the canary's request metrics).
"$HELM" upgrade ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx -n ingress-nginx \
  --reuse-values --set controller.metrics.serviceMonitor.enabled=true --wait --timeout 5m

# 4. PostgreSQL for the failures API (a demo instance: no persistence, a fixed password).
log "starting PostgreSQL in namespace $NS"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" apply -f - <<'PG' >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres}
spec:
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers:
        - name: postgres
          image: postgres:16-bookworm
          env:
            - {name: POSTGRES_USER, value: rollguard}
            - {name: POSTGRES_PASSWORD, value: rollguard}
            - {name: POSTGRES_DB, value: rollguard}
          ports: [{containerPort: 5432}]
          readinessProbe: {exec: {command: [pg_isready, -U, rollguard]}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: postgres}
spec:
  selector: {app: postgres}
  ports: [{port: 5432}]
PG
kubectl -n "$NS" create secret generic rollguard-database \
  --from-literal=DATABASE_URL="postgresql+psycopg://rollguard:rollguard@postgres.$NS.svc:5432/rollguard" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" rollout status deployment/postgres --timeout 180s

# 5. The image, built from this checkout and loaded into the node (no registry involved).
log "building $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# 6. rollguard from the chart, the failures API on. The chart installs and upgrades its CRDs
# itself (templates), on re-runs too.
log "installing rollguard"
"$HELM" upgrade --install rollguard charts/rollguard -n "$NS" \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set api.enabled=true --set api.database.existingSecret=rollguard-database \
  --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
  --wait --timeout 5m
"$HELM" test rollguard -n "$NS" --timeout 2m

log "ready in $((SECONDS - T0))s"
cat >&2 <<EOF2
  kubectl get rollguard -A                                    # catalogs, flags, canaries
  kubectl -n $NS port-forward svc/rollguard-api 8000            # failures API
  kubectl -n monitoring port-forward svc/kps-grafana 3000:80    # Grafana (admin / prom-operator): dashboard "rollguard"
  kubectl -n monitoring port-forward svc/kps-kube-prometheus-stack-prometheus 9090
  hack/kind-up.sh --delete
EOF2
