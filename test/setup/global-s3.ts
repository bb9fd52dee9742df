// Placeholder: replaced by the S3 work (starts s3rver on loopback when S3_ENDPOINT is unset).
export default async function setup(): Promise<void> {}
