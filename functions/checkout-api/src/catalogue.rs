//! Catalogue routes: `PUT/GET /products/{product_id}`, `GET /products`.

use axum::Json;
use axum::extract::{Path, State};
use domain::checkout::CheckoutError;
use domain::checkout::catalogue::Product;
use platform::Store;
use platform::http::{ApiError, ApiJson, Caller};
use serde::Serialize;
use utoipa::ToSchema;

/// Creates or replaces a product.
#[utoipa::path(
    put,
    path = "/v1/properties/{property}/products/{product_id}",
    params(("property" = String, Path), ("product_id" = String, Path)),
    request_body = Product,
    responses((status = 200, body = Product), (status = 400, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn put_product(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    body: ApiJson<Product>,
) -> Result<Json<Product>, ApiError> {
    caller.require_live()?;
    let product = body.value.check(&path.1)?;
    store.put_product(&caller.property.id, &product).await?;
    Ok(Json(product))
}

/// One product.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/products/{product_id}",
    params(("property" = String, Path), ("product_id" = String, Path)),
    responses((status = 200, body = Product), (status = 404, body = platform::http::error::ErrorBody)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn get_product(
    State(store): State<Store>,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Json<Product>, ApiError> {
    store
        .product(&caller.live_property(), &path.1)
        .await?
        .map(Json)
        .ok_or_else(|| CheckoutError::ProductNotFound.into())
}

#[derive(Serialize, ToSchema)]
pub struct ProductList {
    pub products: Vec<Product>,
}

/// The catalogue.
#[utoipa::path(
    get,
    path = "/v1/properties/{property}/products",
    params(("property" = String, Path)),
    responses((status = 200, body = ProductList)),
    security(("partner_key" = [])),
    tag = "checkout"
)]
pub async fn list_products(
    State(store): State<Store>,
    caller: Caller,
) -> Result<Json<ProductList>, ApiError> {
    Ok(Json(ProductList {
        products: store.products(&caller.live_property()).await?,
    }))
}
