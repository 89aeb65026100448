// The client's GraphQL operations. GraphQL Code Generator reads the
// strings marked /* GraphQL */ and types each in src/generated/graphql.ts.

const EVENT = /* GraphQL */ `
  fragment EventFields on Event {
    id
    eventType
    payload
    idempotencyKey
    orderingKey
    deliverAt
    deliveryCount
    createdAt
  }
`;

const ENDPOINT = /* GraphQL */ `
  fragment EndpointFields on Endpoint {
    id
    name
    description
    url
    type
    eventTypes
    isActive
    health
    disabledReason
    disabledAt
    ordering
    timeout
    retryPolicy { maxAttempts initialDelay backoffMultiplier maxDelay }
    rateLimit { requests per }
    filter
    auth { type headerName }
    headers { name value }
    consecutiveFailures
    successCount
    failureCount
    lastSuccessAt
    lastFailureAt
    previousSecretExpiresAt
    createdAt
    updatedAt
    listener { ttl connected lastSeenAt expiresAt }
  }
`;

const EVENT_TYPE = /* GraphQL */ `
  fragment EventTypeFields on EventType {
    id
    name
    description
    example
    jsonSchema
    builtIn
    archivedAt
  }
`;

const DELIVERY = /* GraphQL */ `
  fragment DeliveryFields on Delivery {
    id
    eventID
    endpointID
    eventType
    orderingKey
    status
    attemptCount
    lastAttemptAt
    lastResponseStatus
    lastError
    nextAttemptAt
    completedAt
    createdAt
  }
`;

const ATTEMPT = /* GraphQL */ `
  fragment AttemptFields on Attempt {
    id
    attemptNumber
    trigger
    succeeded
    requestURL
    responseStatus
    responseBody
    responseBodyTruncated
    durationMs
    errorMessage
    startedAt
    completedAt
  }
`;

const PAGE = /* GraphQL */ `
  fragment PageFields on PageInfo {
    hasNextPage
    endCursor
  }
`;

export const Viewer = /* GraphQL */ `
  query Viewer {
    viewer { isAdmin app { id name } apiKey { id name prefix scopes } }
  }
`;

export const PublishEvent = /* GraphQL */ `
  mutation PublishEvent($input: PublishEventInput!) {
    publishEvent(input: $input) { ...EventFields }
  }
  ${EVENT}
`;

export const PublishEvents = /* GraphQL */ `
  mutation PublishEvents($input: [PublishEventInput!]!) {
    publishEvents(input: $input) { ...EventFields }
  }
  ${EVENT}
`;

export const GetEvent = /* GraphQL */ `
  query GetEvent($id: ID!) {
    events(first: 1, where: { id: $id }) { edges { node { ...EventFields } } }
  }
  ${EVENT}
`;

export const ListEvents = /* GraphQL */ `
  query ListEvents($first: Int!, $after: Cursor, $eventType: String, $eventTypePrefix: String, $since: Time, $until: Time) {
    events(
      first: $first
      after: $after
      orderBy: { field: CREATED_AT, direction: DESC }
      where: { eventType: $eventType, eventTypeHasPrefix: $eventTypePrefix, createdAtGTE: $since, createdAtLT: $until }
    ) {
      totalCount
      pageInfo { ...PageFields }
      edges { node { ...EventFields } }
    }
  }
  ${EVENT}
  ${PAGE}
`;

export const ListEndpoints = /* GraphQL */ `
  query ListEndpoints($first: Int!, $after: Cursor, $isActive: Boolean) {
    endpoints(first: $first, after: $after, orderBy: { field: CREATED_AT }, where: { isActive: $isActive }) {
      totalCount
      pageInfo { ...PageFields }
      edges { node { ...EndpointFields } }
    }
  }
  ${ENDPOINT}
  ${PAGE}
`;

export const GetEndpoint = /* GraphQL */ `
  query GetEndpoint($id: ID!) {
    endpoints(first: 1, where: { id: $id }) { edges { node { ...EndpointFields } } }
  }
  ${ENDPOINT}
`;

export const CreateEndpoint = /* GraphQL */ `
  mutation CreateEndpoint($input: CreateEndpointInput!) {
    createEndpoint(input: $input) { secret endpoint { ...EndpointFields } }
  }
  ${ENDPOINT}
`;

export const UpdateEndpoint = /* GraphQL */ `
  mutation UpdateEndpoint($id: ID!, $input: UpdateEndpointInput!) {
    updateEndpoint(id: $id, input: $input) { ...EndpointFields }
  }
  ${ENDPOINT}
`;

export const DeleteEndpoint = /* GraphQL */ `
  mutation DeleteEndpoint($id: ID!) {
    deleteEndpoint(id: $id) { deletedId }
  }
`;

export const RotateEndpointSecret = /* GraphQL */ `
  mutation RotateEndpointSecret($id: ID!, $overlap: Duration) {
    rotateEndpointSecret(id: $id, input: { overlap: $overlap }) { secret endpoint { ...EndpointFields } }
  }
  ${ENDPOINT}
`;

export const TestEndpoint = /* GraphQL */ `
  mutation TestEndpoint($id: ID!, $input: TestEndpointInput!) {
    testEndpoint(id: $id, input: $input) {
      delivered
      statusCode
      responseBody
      durationMs
      error
      attempt { ...AttemptFields }
    }
  }
  ${ATTEMPT}
`;

export const ListDeliveries = /* GraphQL */ `
  query ListDeliveries(
    $first: Int!
    $after: Cursor
    $endpointID: ID
    $eventID: ID
    $eventType: String
    $status: DeliveryStatus
    $since: Time
    $until: Time
  ) {
    deliveries(
      first: $first
      after: $after
      orderBy: { field: CREATED_AT, direction: DESC }
      where: { endpointID: $endpointID, eventID: $eventID, eventType: $eventType, status: $status, createdAtGTE: $since, createdAtLT: $until }
    ) {
      totalCount
      pageInfo { ...PageFields }
      edges { node { ...DeliveryFields } }
    }
  }
  ${DELIVERY}
  ${PAGE}
`;

export const GetDelivery = /* GraphQL */ `
  query GetDelivery($id: ID!) {
    deliveries(first: 1, where: { id: $id }) {
      edges {
        node {
          ...DeliveryFields
          attempts(first: 100, orderBy: { field: ATTEMPT_NUMBER }) { edges { node { ...AttemptFields } } }
        }
      }
    }
  }
  ${DELIVERY}
  ${ATTEMPT}
`;

export const RetryDelivery = /* GraphQL */ `
  mutation RetryDelivery($id: ID!) {
    retryDelivery(id: $id) { ...DeliveryFields }
  }
  ${DELIVERY}
`;

export const RetryDeliveries = /* GraphQL */ `
  mutation RetryDeliveries($ids: [ID!]!) {
    retryDeliveries(ids: $ids) {
      deliveries { ...DeliveryFields }
      notRetried { id code message }
    }
  }
  ${DELIVERY}
`;

export const ReplayDeliveries = /* GraphQL */ `
  mutation ReplayDeliveries($endpointID: ID!, $input: ReplayDeliveriesInput!) {
    replayDeliveries(endpointId: $endpointID, input: $input) { count }
  }
`;

export const CreatePortalSession = /* GraphQL */ `
  mutation CreatePortalSession($appID: ID, $input: CreatePortalSessionInput!) {
    createPortalSession(appId: $appID, input: $input) { url token expiresAt readOnly apiKey { id } }
  }
`;

export const RevokePortalSession = /* GraphQL */ `
  mutation RevokePortalSession($id: ID!) {
    revokePortalSession(id: $id) { id revokedAt }
  }
`;

export const RevokePortalSessions = /* GraphQL */ `
  mutation RevokePortalSessions($appID: ID) {
    revokePortalSessions(appId: $appID) { count }
  }
`;

export const ListEventTypes = /* GraphQL */ `
  query ListEventTypes($first: Int!, $after: Cursor, $name: String) {
    eventTypes(first: $first, after: $after, where: { name: $name }, orderBy: { field: NAME }) {
      totalCount
      pageInfo { ...PageFields }
      edges { node { ...EventTypeFields } }
    }
  }
  ${EVENT_TYPE}
  ${PAGE}
`;

export const CreateEventType = /* GraphQL */ `
  mutation CreateEventType($input: CreateEventTypeInput!) {
    createEventType(input: $input) { ...EventTypeFields }
  }
  ${EVENT_TYPE}
`;

export const ArchiveEventType = /* GraphQL */ `
  mutation ArchiveEventType($id: ID!) {
    archiveEventType(id: $id) { ...EventTypeFields }
  }
  ${EVENT_TYPE}
`;

export const UnarchiveEventType = /* GraphQL */ `
  mutation UnarchiveEventType($id: ID!) {
    unarchiveEventType(id: $id) { ...EventTypeFields }
  }
  ${EVENT_TYPE}
`;

export const CreateListener = /* GraphQL */ `
  mutation CreateListener($input: CreateListenerInput!) {
    createListener(input: $input) { endpoint { ...EndpointFields } secret }
  }
  ${ENDPOINT}
`;

export const DeliveryUpdated = /* GraphQL */ `
  subscription DeliveryUpdated($endpointID: ID, $eventType: String, $status: DeliveryStatus) {
    deliveryUpdated(endpointId: $endpointID, eventType: $eventType, status: $status) {
      kind
      deliveryId
      eventId
      endpointId
      eventType
      status
      attemptNumber
      responseStatus
      durationMs
      error
      nextAttemptAt
      at
    }
  }
`;

export const EndpointUpdated = /* GraphQL */ `
  subscription EndpointUpdated($endpointID: ID) {
    endpointUpdated(endpointId: $endpointID) { endpointId reason at }
  }
`;

export const EventPublished = /* GraphQL */ `
  subscription EventPublished($eventType: String) {
    eventPublished(eventType: $eventType) { eventId eventType deliveryCount at }
  }
`;

export const Listen = /* GraphQL */ `
  subscription Listen($listenerId: ID!) {
    listen(listenerId: $listenerId) {
      kind
      waiting
      delivery { deliveryId eventId eventType attempt token body headers { name value } timeoutMs }
    }
  }
`;

export const ReportListenerDelivery = /* GraphQL */ `
  mutation ReportListenerDelivery($input: ListenerReportInput!) {
    reportListenerDelivery(input: $input) { deliveryId }
  }
`;
